package sql

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/sqlitestore"
	_ "github.com/mattn/go-sqlite3" // the cgo driver, "sqlite3"
	_ "modernc.org/sqlite"          // the pure-Go driver, "sqlite"
)

const keys = 100_000

// names are the existing keys of every benchmark.
var names = func() []string {
	n := make([]string, keys)
	for i := range n {
		n[i] = fmt.Sprintf("user:%d", i)
	}
	return n
}()

// limit holds each unit for an hour, so no existing row expires, or is swept, during a run.
var limit = ratelimit.Limit{Rate: 10_000, Period: 10_000 * time.Hour}

// BenchmarkSQLite measures GCRA decisions in one process on 100,000 existing keys and the
// first decisions of new keys (the insert path), under synchronous=NORMAL (what Open sets)
// and FULL, with the pure-Go driver (modernc.org/sqlite, what Open uses) and the cgo one
// (github.com/mattn/go-sqlite3).
func BenchmarkSQLite(b *testing.B) {
	ctx := context.Background()
	for _, driver := range []string{"sqlite", "sqlite3"} {
		for _, sync := range []string{"NORMAL", "FULL"} {
			b.Run(fmt.Sprintf("driver=%s/synchronous=%s/insert", driver, sync), func(b *testing.B) {
				_, s, _ := newSQLite(b, driver, sync)
				i := 0
				for b.Loop() {
					if _, err := s.Take(ctx, fmt.Sprintf("new:%d", i), ratelimit.GCRA, limit, 1); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run(fmt.Sprintf("driver=%s/synchronous=%s/existing", driver, sync), func(b *testing.B) {
				db, s, path := newSQLite(b, driver, sync)
				for _, k := range names {
					if _, err := s.Take(ctx, k, ratelimit.GCRA, limit, 1); err != nil {
						b.Fatal(err)
					}
				}
				i := 0
				for b.Loop() {
					if _, err := s.Take(ctx, names[i%keys], ratelimit.GCRA, limit, 1); err != nil {
						b.Fatal(err)
					}
					i += 7919 // a prime: every key in turn, in no order the B-tree favours
				}
				perKey, err := sqliteBytesPerKey(ctx, db, path)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(perKey, "disk-B/key")
			})
		}
	}
}

// newSQLite returns a store on a new file of b's, its database and the file's path.
func newSQLite(b *testing.B, driver, sync string) (*sql.DB, *sqlitestore.Store, string) {
	path := filepath.Join(b.TempDir(), "bench.db")
	db, err := openSQLite(driver, path, sync)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := sqlitestore.New(db, &sqlitestore.Options{Failure: sqlitestore.Failure{Policy: ratelimit.FailError, Timeout: 10 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return db, s, path
}

// openSQLite opens path with driver as sqlitestore.Open configures its database: WAL mode,
// a busy timeout, one connection; synchronous as given.
func openSQLite(driver, path, sync string) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")"
	if driver == "sqlite3" {
		dsn = "file:" + path + "?_busy_timeout=10000&_journal_mode=WAL&_synchronous=" + sync
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	var mode string
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&mode); err != nil {
		db.Close()
		return nil, err
	}
	if want := map[string]string{"NORMAL": "1", "FULL": "2"}[sync]; mode != want {
		db.Close()
		return nil, fmt.Errorf("%s: synchronous is %s, want %s (%s)", driver, mode, want, sync)
	}
	return db, nil
}

// sqliteBytesPerKey checkpoints the write-ahead log into the file and returns the file's
// size per key of the table.
func sqliteBytesPerKey(ctx context.Context, db *sql.DB, path string) (float64, error) {
	if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return 0, err
	}
	var rows int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ratelimit`).Scan(&rows); err != nil {
		return 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return float64(fi.Size()) / float64(rows), nil
}
