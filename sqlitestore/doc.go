// Package sqlitestore is a [ratelimit.Store] that keeps its state in a SQLite database
// file: limits that survive a restart and are shared by the processes of one host (a
// pre-forking server, cron jobs, command-line tools) without running a server.
//
//	s, err := sqlitestore.Open("/var/lib/myapp/limits.db", nil)
//	if err != nil { ... }
//	defer s.Close()
//	lim := ratelimit.New(s, ratelimit.GCRA, ratelimit.PerSecond(10))
//
// [Open] uses the pure-Go driver modernc.org/sqlite, so builds need no C compiler; [New]
// takes a *sql.DB opened with any SQLite driver.
//
// # Semantics
//
// Decisions are those of memorystore and redisstore for all six algorithms: the state of a
// (key, algorithm) is one row, stepped by the same functions. GCRA is decided by one
// INSERT … ON CONFLICT DO UPDATE … RETURNING statement, whose integer arithmetic is exactly
// that of the step function; the other algorithms read, step and write their row in one
// BEGIN IMMEDIATE transaction, and TakeAll does all its rows in one. Durations are exact to
// the nanosecond.
//
// # Clock
//
// The clock is the host's wall clock, read by the process that decides, which is what
// lets several processes share a file. Each row's own instant is its floor: a call whose
// clock reads earlier than the row's last update (it read the clock, then waited for the
// write lock behind a later call) is decided at that update's instant. So the calls on a
// key are decided in the order they write it, and a wall clock that steps back (an NTP
// correction, a manual change) never over-grants: keys touched within the step only stop
// refilling until the clock catches up. A clock that steps forward refills early, as it
// would for any store on that clock.
//
// # Housekeeping
//
// Each row carries the instant from which it decides as no row would (its decision's
// ResetAfter after the write); a row read after that is treated as absent. The store's
// goroutine deletes such rows every [Options.SweepInterval], at most [Options.SweepBatch]
// per statement through an index on that instant: no decision scans the table, and the
// table holds about the keys active within their reset time.
//
// The tables are created on first use, with a meta table holding the schema version (now
// 1). A later version that changes the layout migrates from the recorded version in one
// transaction; a store refuses a database whose version is newer than it knows.
//
// # Failures
//
// A call is bounded by [Options.Timeout], its wait for SQLite's write lock included. A
// database locked past it, or failing, is answered by the Policy of [Options.Failure], a
// [ratelimit.FailPolicy], with the circuit breaker, [Options.OnError] and [Store.Stats] of
// redisstore. A transaction is never retried: one that failed before COMMIT rolled back,
// and one whose COMMIT failed may have committed.
//
// # Durability
//
// WAL mode with synchronous=NORMAL (what [Open] sets) keeps every committed decision when
// the process is killed; an operating system crash or power loss may lose the last ones,
// which synchronous=FULL keeps at a cost (see BENCHMARKS.md).
package sqlitestore
