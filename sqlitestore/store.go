package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/failover"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	_ "modernc.org/sqlite" // the "sqlite" driver Open uses
)

// Options configures a Store. A nil *Options, and every zero field, means the default.
type Options struct {
	// Table names the table of states; the store also creates Table+"_meta", holding the
	// schema version. It must be a plain identifier (letters, digits, underscores, not
	// starting with a digit). Default "ratelimit".
	Table string

	// Timeout bounds each call to the database, waits for its write lock included, in
	// addition to the caller's context. A call that takes longer is a failure answered by
	// Policy. Open also sets SQLite's busy timeout to it. Default 100ms.
	Timeout time.Duration

	// BreakerThreshold is the number of consecutive failed calls after which the circuit
	// breaker opens: calls are then answered by Policy at once, without trying the
	// database. Default 5; a negative value disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long the breaker stays open; then one call probes the
	// database while the others are answered by Policy. Default 1s.
	BreakerCooldown time.Duration

	// Policy says how calls are answered while the database fails (locked past Timeout,
	// unreadable, full). Default [ratelimit.FailLocal].
	Policy ratelimit.FailPolicy

	// Local is the store FailLocal answers from. Default: a memorystore.Store created by
	// New and closed by [Store.Close]; a Local given here is the caller's.
	Local ratelimit.Store

	// OnError, when set, is called with every failure of the database, synchronously in the
	// caller's goroutine; calls answered while the breaker is open pass an error wrapping
	// [ratelimit.ErrCircuitOpen]. Default nil. [Store.Stats] counts the same events.
	OnError func(error)

	// SweepInterval is how often the store's goroutine deletes expired rows. Default 1s; a
	// negative value starts no goroutine, and nothing deletes expired rows (they still
	// decide as no row would).
	SweepInterval time.Duration

	// SweepBatch is the most rows one delete statement removes; a sweep repeats it until a
	// statement deletes fewer, so no writer waits long behind it. Default 1000.
	SweepBatch int
}

// Default option values.
const (
	DefaultTable         = "ratelimit"
	DefaultTimeout       = failover.DefaultTimeout
	DefaultSweepInterval = time.Second
	DefaultSweepBatch    = 1000
)

// Store is a [ratelimit.Store] keeping state in a SQLite database, one row per (key,
// algorithm). It is safe for concurrent use, also by several processes on one file.
type Store struct {
	db     *sql.DB
	ownsDB bool
	q      queries
	guard  *failover.Guard

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

// Open opens (creating it if needed) the SQLite database file at path with the pure-Go
// driver modernc.org/sqlite, in WAL mode with synchronous=NORMAL and a busy timeout of
// [Options.Timeout], and returns a Store on it. The store owns the database: [Store.Close]
// closes it. It keeps one connection, so the goroutines of a process queue in Go rather
// than in SQLite's sleeping busy handler; several processes share the file through
// SQLite's locks.
//
// synchronous=NORMAL in WAL mode loses no committed decision when the process dies; a
// power loss or an operating system crash may lose the last ones. Open the database
// yourself with synchronous=FULL and pass it to [New] to keep those too.
func Open(path string, opts *Options) (*Store, error) {
	timeout := DefaultTimeout
	if opts != nil && opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", max(1, timeout.Milliseconds())))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s, err := build(db, opts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	s.ownsDB = true
	return s, nil
}

// New returns a Store on db, an SQLite database opened by the caller with any driver
// (modernc.org/sqlite, github.com/mattn/go-sqlite3, ...), creating the tables on first use.
// The caller owns db: [Store.Close] leaves it open. Configure it as Open does: WAL mode, a
// busy timeout, and few connections.
func New(db *sql.DB, opts *Options) (*Store, error) {
	s, err := build(db, opts)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return s, nil
}

func build(db *sql.DB, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if !rowstate.ValidTable(o.Table) {
		return nil, fmt.Errorf("table name %q is not a plain identifier", o.Table)
	}
	s := &Store{
		db:         db,
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
	ctx, cancel := context.WithTimeout(context.Background(), max(o.Timeout, 5*time.Second))
	defer cancel()
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	s.guard = failover.New(failover.Options{
		Policy:           o.Policy,
		Timeout:          o.Timeout,
		BreakerThreshold: o.BreakerThreshold,
		BreakerCooldown:  o.BreakerCooldown,
		Local:            o.Local,
		OnError:          o.OnError,
		Unavailable:      func(err error) bool { return !errors.Is(err, errState) },
	})
	if s.sweepEvery > 0 {
		sw := &rowstate.Sweeper{Name: "sqlitestore", Every: s.sweepEvery, Batch: s.sweepBatch, Guard: s.guard, Delete: s.deleteExpired}
		s.swept.Go(func() { sw.Run(s.done) })
	}
	return s, nil
}

// Close stops the sweeping goroutine, marks the store closed (later calls return an error
// wrapping [ratelimit.ErrClosed]), closes the local fallback store if New created it, and
// closes the database if Open opened it. It is idempotent and returns the database's
// Close error, if any.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.swept.Wait()
		s.guard.Close()
		if s.ownsDB {
			err = s.db.Close()
		}
	})
	return err
}

// Stats are counters of a Store's calls since it was created. Each is monotonic.
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

// errState marks a stored state the store cannot read: an error for the caller, not an
// unavailable database.
var errState = errors.New("sqlitestore: malformed state")

// now is the store's clock: the wall clock in Unix nanoseconds (see the package
// documentation on clocks that step back).
func now() int64 { return time.Now().UnixNano() }

// Take implements [ratelimit.Store]. GCRA takes one statement; the other algorithms read,
// step and write the row in one immediate transaction. When the database fails, the
// answer follows [Options.Policy].
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
		d, err = s.take(ctx, c)
		return err
	}, func(err error) error { return fmt.Errorf("sqlitestore: take %q: %w", key, err) })
	switch {
	case answer:
		return s.guard.Answer(ctx, key, alg, limit, n, c.P, err)
	case err != nil:
		return ratelimit.Result{}, err
	}
	return d.Result(c.P), nil
}

func (s *Store) take(ctx context.Context, c rowstate.Call) (algo.Decision, error) {
	switch {
	case c.Cost == 0:
		row, found, err := s.read(ctx, s.db, c)
		if err != nil {
			return algo.Decision{}, err
		}
		_, _, d, err := rowstate.Step(c, row, found, now())
		return d, stateErr(err)
	case c.Alg == ratelimit.GCRA:
		return s.gcra(ctx, c)
	}
	var d algo.Decision
	err := s.tx(ctx, func(conn *sql.Conn) error {
		row, found, err := s.read(ctx, conn, c)
		if err != nil {
			return err
		}
		next, write, dd, err := rowstate.Step(c, row, found, now())
		if err != nil {
			return stateErr(err)
		}
		d = dd
		if write {
			return s.write(ctx, conn, c, next)
		}
		return nil
	})
	return d, err
}

// gcra runs the one-statement upsert. A denial writes nothing and returns no row; the state
// is then read to report it. Should the state read allow (the row was reset or swept in
// between), the upsert, which provably did not write, runs again.
func (s *Store) gcra(ctx context.Context, c rowstate.Call) (algo.Decision, error) {
	g := rowstate.GCRAArgs(c.P, c.Cost)
	for range 3 {
		t := now()
		var at, x int64
		err := s.db.QueryRowContext(ctx, s.q.gcra, c.Key, int64(c.Alg), t, g.Rate, g.NQ, g.NR, g.CQ, g.CR).Scan(&at, &x)
		if err == nil {
			return rowstate.GCRAAllowed(c.P, at, x, t), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return algo.Decision{}, err
		}
		row, found, err := s.read(ctx, s.db, c)
		if err != nil {
			return algo.Decision{}, err
		}
		_, _, d, err := rowstate.Step(c, row, found, t)
		if err != nil || !d.Allowed {
			return d, stateErr(err)
		}
	}
	return algo.Decision{}, errors.New("the state kept changing under the upsert")
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) read(ctx context.Context, q querier, c rowstate.Call) (rowstate.Row, bool, error) {
	var r rowstate.Row
	err := q.QueryRowContext(ctx, s.q.read, c.Key, int64(c.Alg)).Scan(&r.At, &r.X, &r.Y, &r.Log, &r.Expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return rowstate.Row{}, false, nil
	case err != nil:
		return rowstate.Row{}, false, err
	}
	return r, true, nil
}

func (s *Store) write(ctx context.Context, conn *sql.Conn, c rowstate.Call, r rowstate.Row) error {
	var log any
	if r.Log != nil {
		log = r.Log
	}
	_, err := conn.ExecContext(ctx, s.q.write, c.Key, int64(c.Alg), r.At, r.X, r.Y, log, r.Expires)
	return err
}

func stateErr(err error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", errState, err)
	}
	return nil
}

// tx runs fn in an immediate transaction: the write lock is taken at BEGIN, so the
// transaction never fails half-way for want of it. It is never retried: a failure before
// COMMIT rolled back, and a failed COMMIT may have committed.
func (s *Store) tx(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err == nil {
		if err = fn(conn); err == nil {
			_, err = conn.ExecContext(ctx, "COMMIT")
		}
	}
	if err != nil {
		rollback(conn)
	}
	return err
}

// rollback ends a failed transaction, if one is open. A connection it cannot clean is
// dropped from the pool rather than handed to the next call inside a transaction.
func rollback(conn *sql.Conn) {
	_, err := conn.ExecContext(context.Background(), "ROLLBACK")
	if err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
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
	if _, err := s.db.ExecContext(ctx, s.q.reset, key, int64(alg)); err != nil {
		err = fmt.Errorf("sqlitestore: reset %q: %w", key, err)
		s.guard.Report(err)
		return err
	}
	return nil
}

// Ping reports whether the database answers, within [Options.Timeout] and ctx.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.guard.Context(ctx)
	defer cancel()
	return s.db.PingContext(ctx)
}
