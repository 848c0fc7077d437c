// Package pgstore is a [ratelimit.Store] that keeps its state in PostgreSQL, for teams
// that run PostgreSQL and not Redis: limits shared by every process that reaches the
// database, surviving restarts.
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
//	if err != nil { ... }
//	s, err := pgstore.New(ctx, pool, nil)
//	if err != nil { ... }
//	defer s.Close()
//	lim := ratelimit.New(s, ratelimit.GCRA, ratelimit.PerSecond(10))
//
// It uses github.com/jackc/pgx/v5; the caller owns the *pgxpool.Pool.
//
// # Semantics
//
// Decisions are those of memorystore, redisstore and sqlitestore for all six algorithms:
// the state of a (key, algorithm) is one row, stepped by the same functions. GCRA is
// decided by one INSERT … ON CONFLICT DO UPDATE … RETURNING statement whose integer
// arithmetic is exactly that of the step function; the other algorithms lock their row
// (SELECT … FOR UPDATE), step and write it in one transaction, and TakeAll locks all its
// rows in one.
//
// # Clock
//
// The clock is the database server's, clock_timestamp() read in the statement that
// decides (after the row lock, in a transaction), so that hosts with skewed clocks agree.
// The GCRA statement reads it before it may wait for a row another call holds; each row's
// instant is its floor, so that call is decided at the later instant of the one it waited
// for, and the calls on a key are decided in the order they write it. The resolution is a
// microsecond, as Redis's TIME: durations are exact to the microsecond. A server clock
// that steps back never over-grants (the floor again); one that steps forward refills
// early.
//
// # Housekeeping
//
// Each row carries the instant from which it decides as no row would (its decision's
// ResetAfter after the write), and a row read after that is treated as absent, as Redis
// forgets a key at its TTL. The store's goroutine deletes expired rows every
// [Options.SweepInterval], at most [Options.SweepBatch] per statement through an index,
// skipping rows that decisions hold locked.
//
// The tables are created on first use, under an advisory lock, with a meta table holding
// the schema version (now 1). A later version that changes the layout migrates from the
// recorded version in one transaction; a store refuses a database whose version is newer
// than it knows.
//
// # Failures
//
// A call is bounded by [Options.Timeout], lock waits included. A database that cannot be
// reached, or fails, is answered by the Policy of [Options.Failure], a [ratelimit.FailPolicy], with the
// circuit breaker, [Options.OnError] and [Store.Stats] of redisstore. A transaction is
// never retried: one that failed before COMMIT rolled back, and one whose COMMIT was lost
// with the connection may have committed, so a call that timed out may have taken its
// units although its caller got a policy answer.
//
// # Durability and speed
//
// By default every decision is a durable commit. For counters that may be lost with the
// server, [Options.Unlogged] creates the table UNLOGGED (a crash, not a clean restart,
// empties it); or set synchronous_commit=off on the pool's connections
// (pgxpool.Config.ConnConfig.RuntimeParams), which keeps the table consistent but may lose
// the last decisions before a crash. BENCHMARKS.md measures the three.
package pgstore
