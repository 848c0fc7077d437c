// Package sql holds the benchmarks of the SQL stores, sqlitestore and pgstore, in a module
// of their own so that the cgo SQLite driver compared never becomes a dependency of theirs.
//
//	go test -run '^$' -bench SQLite -benchtime 3s     # one process; modernc and cgo drivers
//	go test -run '^$' -bench Postgres -benchtime 5s   # 16 goroutines; durable, UNLOGGED, async commit
//
// Both decide GCRA on 100,000 existing keys, and report the insert path apart; the
// PostgreSQL benchmarks start their own durable server (see internal/pgtest) and report
// its CPU time per decision (on Linux) and latency percentiles. Each reports the bytes per
// key on disk.
package sql
