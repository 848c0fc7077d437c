package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/failover"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options configures a Store. A nil *Options, and every zero field, means the default.
type Options struct {
	// Table names the table of states, in the connection's search path; the store also
	// creates Table+"_meta", holding the schema version. It must be a plain identifier
	// (letters, digits, underscores, not starting with a digit). Default "ratelimit".
	Table string

	// Unlogged creates the table UNLOGGED when the store creates it: writes skip the
	// write-ahead log, about twice as fast, and a crash of the server (not a clean restart)
	// empties the table, so every key is back to full capacity. It is not replicated
	// either. It has no effect on a table that exists. Default false.
	Unlogged bool

	// Failure bounds each call to the database (Timeout, 100ms by default), sets the
	// circuit breaker, and says how calls are answered while the database fails (Policy,
	// [ratelimit.FailLocal] by default). Its fields are promoted: o.Timeout is
	// o.Failure.Timeout.
	Failure

	// SweepInterval is how often the store's goroutine deletes expired rows. Default 1s; a
	// negative value starts no goroutine (expired rows still decide as no row would). With
	// several processes on one database each sweeps; the deletes do not conflict.
	SweepInterval time.Duration

	// SweepBatch is the most rows one delete statement removes; a sweep repeats it until a
	// statement deletes fewer. Default 1000.
	SweepBatch int
}

// Failure are the failure options of a Store, shared with sqlitestore: Timeout,
// BreakerThreshold, BreakerCooldown, Policy, Local and OnError, each documented on its
// field.
type Failure = failover.Settings

// Stats are counters of a Store's calls since New, each monotonic: Calls (Take and TakeAll
// calls that passed validation), Failures (calls to the database that failed),
// PolicyAnswers (calls answered by Policy instead of the database), BreakerOpens, and
// BreakerOpen (whether the breaker is open now).
type Stats = failover.Stats

// Default option values.
const (
	DefaultTable         = "ratelimit"
	DefaultSweepInterval = rowstate.DefaultSweepInterval
	DefaultSweepBatch    = rowstate.DefaultSweepBatch
)

// Store is a [ratelimit.Store] keeping state in PostgreSQL, one row per (key, algorithm),
// on the server's clock. It is safe for concurrent use, by any number of processes.
type Store struct {
	pool *pgxpool.Pool
	q    queries
	core *rowstate.Core
}

var (
	_ ratelimit.Store      = (*Store)(nil)
	_ ratelimit.BatchStore = (*Store)(nil)
)

// New returns a Store on pool, creating its tables on first use (ctx bounds that). The
// caller owns pool: [Store.Close] leaves it open.
func New(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !rowstate.ValidTable(o.Table) {
		return nil, fmt.Errorf("pgstore: table name %q is not a plain identifier", o.Table)
	}
	s := &Store{pool: pool, q: newQueries(o.Table)}
	if err := s.migrate(ctx, o.Unlogged); err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s.core = rowstate.NewCore(rowstate.Config{
		Name: "pgstore", Failure: o.Failure, Unavailable: unavailable,
		SweepInterval: o.SweepInterval, SweepBatch: o.SweepBatch, Delete: s.deleteExpired,
	})
	return s, nil
}

// unavailable reports whether err means the database could not decide. The server's
// errors about data, constraints, or the statements themselves (a table of another
// layout) are errors for the caller instead, as is a malformed row.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22", "23", "42":
			return false
		}
	}
	return true
}

// Close stops the sweeping goroutine and marks the store closed: later calls return an
// error wrapping [ratelimit.ErrClosed]. It closes the local fallback store if New created
// it, and leaves the pool open. It is idempotent and returns nil.
func (s *Store) Close() error { return s.core.Close(nil) }

// Stats returns the store's counters.
func (s *Store) Stats() Stats { return s.core.Stats() }

// Take implements [ratelimit.Store]. GCRA takes one statement; the other algorithms lock,
// step and write their row in one transaction. When the database fails, the answer follows the
// Policy of [Options.Failure].
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	return s.core.Take(ctx, key, alg, limit, n, func(ctx context.Context, c rowstate.Call) (algo.Decision, error) {
		d, _, err := s.take(ctx, c)
		return d, err
	})
}

// take decides c and returns the server instant it decided at.
func (s *Store) take(ctx context.Context, c rowstate.Call) (algo.Decision, int64, error) {
	switch {
	case c.Cost == 0:
		row, found, now, err := s.peek(ctx, c)
		if err != nil {
			return algo.Decision{}, 0, err
		}
		_, _, d, err := rowstate.Step(c, row, found, now)
		return d, now, rowstate.StateErr(err)
	case c.Alg == ratelimit.GCRA:
		return s.gcra(ctx, c)
	}
	var d algo.Decision
	var now int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		row, found, t, err := s.lock(ctx, tx, c)
		if err != nil {
			return err
		}
		next, write, dd, err := rowstate.Step(c, row, found, t)
		if err != nil {
			return rowstate.StateErr(err)
		}
		d, now = dd, t
		if write {
			return s.write(ctx, tx, c, next)
		}
		return nil
	})
	return d, now, err
}

// gcra runs the one-statement upsert. A denial writes nothing and returns no row; the state
// is then read to report it. Should the state read allow (the row was reset or swept in
// between), the upsert, which provably did not write, runs again.
func (s *Store) gcra(ctx context.Context, c rowstate.Call) (algo.Decision, int64, error) {
	g := rowstate.GCRAArgs(c.P, c.Cost)
	for range 3 {
		var at, x, now int64
		err := s.pool.QueryRow(ctx, s.q.gcra, []byte(c.Key), int16(c.Alg), g.Rate, g.NQ, g.NR, g.CQ, g.CR).Scan(&at, &x, &now)
		if err == nil {
			return rowstate.GCRAAllowed(c.P, at, x, now), now, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return algo.Decision{}, 0, err
		}
		row, found, now, err := s.peek(ctx, c)
		if err != nil {
			return algo.Decision{}, 0, err
		}
		_, _, d, err := rowstate.Step(c, row, found, now)
		if err != nil || !d.Allowed {
			return d, now, rowstate.StateErr(err)
		}
	}
	return algo.Decision{}, 0, errors.New("the state kept changing under the upsert")
}

// peek reads c's row, if any, and the server's instant.
func (s *Store) peek(ctx context.Context, c rowstate.Call) (rowstate.Row, bool, int64, error) {
	var at, x, y, expires *int64
	var r rowstate.Row
	var now int64
	err := s.pool.QueryRow(ctx, s.q.peek, []byte(c.Key), int16(c.Alg)).Scan(&now, &at, &x, &y, &r.Log, &expires)
	if err != nil {
		return rowstate.Row{}, false, 0, err
	}
	if at == nil || x == nil || y == nil || expires == nil {
		return rowstate.Row{}, false, now, nil
	}
	r.At, r.X, r.Y, r.Expires = *at, *x, *y, *expires
	return r, true, now, nil
}

// lock reads c's row for update in tx, first inserting an expired placeholder when there
// is none so that concurrent first decisions queue on one row lock, then reads the
// server's instant, after the lock.
func (s *Store) lock(ctx context.Context, tx pgx.Tx, c rowstate.Call) (rowstate.Row, bool, int64, error) {
	var r rowstate.Row
	for attempt := 0; ; attempt++ {
		err := tx.QueryRow(ctx, s.q.lock, []byte(c.Key), int16(c.Alg)).Scan(&r.At, &r.X, &r.Y, &r.Log, &r.Expires)
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) || attempt > 0 {
			return rowstate.Row{}, false, 0, err
		}
		if _, err := tx.Exec(ctx, s.q.placeholder, []byte(c.Key), int16(c.Alg)); err != nil {
			return rowstate.Row{}, false, 0, err
		}
	}
	var now int64
	if err := tx.QueryRow(ctx, s.q.now).Scan(&now); err != nil {
		return rowstate.Row{}, false, 0, err
	}
	return r, true, now, nil
}

func (s *Store) write(ctx context.Context, tx pgx.Tx, c rowstate.Call, r rowstate.Row) error {
	_, err := tx.Exec(ctx, s.q.write, []byte(c.Key), int16(c.Alg), r.At, r.X, r.Y, r.Log, r.Expires)
	return err
}

// Reset implements [ratelimit.Store]: it deletes the key's row, and the key's state in the
// local fallback store. A failure of the database is returned as an error whatever the
// policy.
func (s *Store) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	return s.core.Reset(ctx, key, alg, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, s.q.reset, []byte(key), int16(alg))
		return err
	})
}

// Ping reports whether the database answers, within [Options.Timeout] and ctx.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.core.Guard.Context(ctx)
	defer cancel()
	return s.pool.Ping(ctx)
}
