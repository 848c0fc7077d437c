package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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

	// Timeout bounds each call to the database, lock waits included, in addition to the
	// caller's context. A call that takes longer is a failure answered by Policy.
	// Default 100ms.
	Timeout time.Duration

	// BreakerThreshold is the number of consecutive failed calls after which the circuit
	// breaker opens: calls are then answered by Policy at once, without trying the
	// database. Default 5; a negative value disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long the breaker stays open; then one call probes the
	// database while the others are answered by Policy. Default 1s.
	BreakerCooldown time.Duration

	// Policy says how calls are answered while the database fails. Default
	// [ratelimit.FailLocal].
	Policy ratelimit.FailPolicy

	// Local is the store FailLocal answers from. Default: a memorystore.Store created by
	// New and closed by [Store.Close]; a Local given here is the caller's.
	Local ratelimit.Store

	// OnError, when set, is called with every failure of the database, synchronously in the
	// caller's goroutine; calls answered while the breaker is open pass an error wrapping
	// [ratelimit.ErrCircuitOpen]. Default nil. [Store.Stats] counts the same events.
	OnError func(error)

	// SweepInterval is how often the store's goroutine deletes expired rows. Default 1s; a
	// negative value starts no goroutine (expired rows still decide as no row would). With
	// several processes on one database each sweeps; the deletes do not conflict.
	SweepInterval time.Duration

	// SweepBatch is the most rows one delete statement removes; a sweep repeats it until a
	// statement deletes fewer. Default 1000.
	SweepBatch int
}

// Default option values.
const (
	DefaultTable         = "ratelimit"
	DefaultTimeout       = failover.DefaultTimeout
	DefaultSweepInterval = time.Second
	DefaultSweepBatch    = 1000
)

// Store is a [ratelimit.Store] keeping state in PostgreSQL, one row per (key, algorithm),
// on the server's clock. It is safe for concurrent use, by any number of processes.
type Store struct {
	pool  *pgxpool.Pool
	q     queries
	guard *failover.Guard

	sweepEvery time.Duration
	sweepBatch int
	done       chan struct{}
	swept      sync.WaitGroup

	closed    atomic.Bool
	closeOnce sync.Once
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
	s := &Store{
		pool:       pool,
		q:          newQueries(o.Table),
		sweepEvery: o.SweepInterval,
		sweepBatch: o.SweepBatch,
		done:       make(chan struct{}),
	}
	if s.sweepEvery == 0 {
		s.sweepEvery = DefaultSweepInterval
	}
	if s.sweepBatch <= 0 {
		s.sweepBatch = DefaultSweepBatch
	}
	if err := s.migrate(ctx, o.Unlogged); err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s.guard = failover.New(failover.Options{
		Policy:           o.Policy,
		Timeout:          o.Timeout,
		BreakerThreshold: o.BreakerThreshold,
		BreakerCooldown:  o.BreakerCooldown,
		Local:            o.Local,
		OnError:          o.OnError,
		Unavailable:      unavailable,
	})
	if s.sweepEvery > 0 {
		sw := &rowstate.Sweeper{Name: "pgstore", Every: s.sweepEvery, Batch: s.sweepBatch, Guard: s.guard, Delete: s.deleteExpired}
		s.swept.Go(func() { sw.Run(s.done) })
	}
	return s, nil
}

// errState marks a stored state the store cannot read: an error for the caller, not an
// unavailable database.
var errState = errors.New("pgstore: malformed state")

// unavailable reports whether err means the database could not decide. A malformed row,
// and the server's errors about data, constraints, or the statements themselves (a table
// of another layout), are errors for the caller instead.
func unavailable(err error) bool {
	if errors.Is(err, errState) {
		return false
	}
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
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.swept.Wait()
		s.guard.Close()
	})
	return nil
}

// Stats are counters of a Store's calls since New. Each is monotonic.
type Stats struct {
	Calls         uint64 // Take and TakeAll calls that passed validation
	Failures      uint64 // calls to the database that failed
	PolicyAnswers uint64 // calls answered by Policy instead of the database
	BreakerOpens  uint64 // times the circuit breaker opened
	BreakerOpen   bool   // whether the breaker is open now
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	g := s.guard.Stats()
	return Stats{Calls: g.Calls, Failures: g.Failures, PolicyAnswers: g.PolicyAnswers, BreakerOpens: g.BreakerOpens, BreakerOpen: g.BreakerOpen}
}

// Take implements [ratelimit.Store]. GCRA takes one statement; the other algorithms lock,
// step and write their row in one transaction. When the database fails, the answer follows
// [Options.Policy].
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	if s.closed.Load() {
		return ratelimit.Result{}, ratelimit.ErrClosed
	}
	c, err := rowstate.Validate(ctx, key, alg, limit, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	var d algo.Decision
	answer, err := s.guard.Do(ctx, func(ctx context.Context) (err error) {
		d, _, err = s.take(ctx, c)
		return err
	}, func(err error) error { return fmt.Errorf("pgstore: take %q: %w", key, err) })
	switch {
	case answer:
		return s.guard.Answer(ctx, key, alg, limit, n, c.P, err)
	case err != nil:
		return ratelimit.Result{}, err
	}
	return d.Result(c.P), nil
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
		return d, now, stateErr(err)
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
			return stateErr(err)
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
			return d, now, stateErr(err)
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

func stateErr(err error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", errState, err)
	}
	return nil
}

// Reset implements [ratelimit.Store]: it deletes the key's row, and the key's state in the
// local fallback store. A failure of the database is returned as an error whatever the
// policy.
func (s *Store) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if s.closed.Load() {
		return ratelimit.ErrClosed
	}
	if err := rowstate.ValidateReset(key, alg); err != nil {
		return err
	}
	if err := s.guard.Reset(ctx, key, alg); err != nil {
		return err
	}
	ctx, cancel := s.guard.Context(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, s.q.reset, []byte(key), int16(alg)); err != nil {
		err = fmt.Errorf("pgstore: reset %q: %w", key, err)
		s.guard.Report(err)
		return err
	}
	return nil
}

// Ping reports whether the database answers, within [Options.Timeout] and ctx.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.guard.Context(ctx)
	defer cancel()
	return s.pool.Ping(ctx)
}
