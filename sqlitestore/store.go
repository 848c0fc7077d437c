package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
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

	// Failure bounds each call to the database (Timeout, 100ms by default, waits for the
	// file's write lock included; Open also sets SQLite's busy timeout to it), sets the
	// circuit breaker, and says how calls are answered while the database fails (locked
	// past Timeout, unreadable, full: Policy, [ratelimit.FailLocal] by default). Its fields
	// are promoted: o.Timeout is o.Failure.Timeout.
	Failure

	// SweepInterval is how often the store's goroutine deletes expired rows. Default 1s; a
	// negative value starts no goroutine, and nothing deletes expired rows (they still
	// decide as no row would).
	SweepInterval time.Duration

	// SweepBatch is the most rows one delete statement removes; a sweep repeats it until a
	// statement deletes fewer, so no writer waits long behind it. Default 1000.
	SweepBatch int
}

// Failure are the failure options of a Store, shared with pgstore: Timeout,
// BreakerThreshold, BreakerCooldown, Policy, Local and OnError, each documented on its
// field.
type Failure = failover.Settings

// Stats are counters of a Store's calls since it was created, each monotonic: Calls (Take
// and TakeAll calls that passed validation), Failures (calls to the database that failed),
// PolicyAnswers (calls answered by Policy instead of the database), BreakerOpens, and
// BreakerOpen (whether the breaker is open now).
type Stats = failover.Stats

// Default option values.
const (
	DefaultTable         = "ratelimit"
	DefaultSweepInterval = rowstate.DefaultSweepInterval
	DefaultSweepBatch    = rowstate.DefaultSweepBatch
)

// Store is a [ratelimit.Store] keeping state in a SQLite database, one row per (key,
// algorithm). It is safe for concurrent use, also by several processes on one file.
type Store struct {
	db     *sql.DB
	ownsDB bool
	q      queries
	stmts  statements
	core   *rowstate.Core
}

// statements are the statements of the one-statement paths, prepared once: parsing the
// GCRA upsert costs more than running it.
type statements struct{ gcra, read *sql.Stmt }

func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.stmts.gcra, err = s.db.PrepareContext(ctx, s.q.gcra); err != nil {
		return err
	}
	if s.stmts.read, err = s.db.PrepareContext(ctx, s.q.read); err != nil {
		s.stmts.gcra.Close()
		return err
	}
	return nil
}

func (s *Store) closeStatements() error {
	return errors.Join(s.stmts.gcra.Close(), s.stmts.read.Close())
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
	timeout := failover.DefaultTimeout
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
	s := &Store{db: db, q: newQueries(o.Table)}
	ctx, cancel := context.WithTimeout(context.Background(), max(o.Timeout, 5*time.Second))
	defer cancel()
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	s.core = rowstate.NewCore(rowstate.Config{
		Name: "sqlitestore", Failure: o.Failure,
		SweepInterval: o.SweepInterval, SweepBatch: o.SweepBatch, Delete: s.deleteExpired,
	})
	return s, nil
}

// Close stops the sweeping goroutine, marks the store closed (later calls return an error
// wrapping [ratelimit.ErrClosed]), closes the local fallback store if New created it, and
// closes the database if Open opened it. It is idempotent and returns the database's
// Close error, if any.
func (s *Store) Close() error {
	return s.core.Close(func() error {
		err := s.closeStatements()
		if s.ownsDB {
			err = errors.Join(err, s.db.Close())
		}
		return err
	})
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats { return s.core.Stats() }

// now is the store's clock: the wall clock in Unix nanoseconds (see the package
// documentation on clocks that step back).
func now() int64 { return time.Now().UnixNano() }

// Take implements [ratelimit.Store]. GCRA takes one statement; the other algorithms read,
// step and write the row in one immediate transaction. When the database fails, the
// answer follows the Policy.
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	return s.core.Take(ctx, key, alg, limit, n, s.take)
}

func (s *Store) take(ctx context.Context, c rowstate.Call) (algo.Decision, error) {
	switch {
	case c.Cost == 0:
		row, found, err := s.peek(ctx, c)
		if err != nil {
			return algo.Decision{}, err
		}
		_, _, d, err := rowstate.Step(c, row, found, now())
		return d, rowstate.StateErr(err)
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
			return rowstate.StateErr(err)
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
		var at, x, y int64
		err := s.stmts.gcra.QueryRowContext(ctx, c.Key, int64(c.Alg), t, g.Rate, g.NQ, g.NR, g.CQ, g.CR).Scan(&at, &x, &y)
		if err == nil {
			return rowstate.GCRAAllowed(c.P, at, x, y), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return algo.Decision{}, err
		}
		row, found, err := s.peek(ctx, c)
		if err != nil {
			return algo.Decision{}, err
		}
		_, _, d, err := rowstate.Step(c, row, found, t)
		if err != nil || !d.Allowed {
			return d, rowstate.StateErr(err)
		}
	}
	return algo.Decision{}, errors.New("the state kept changing under the upsert")
}

// peek reads c's row, if any, outside a transaction.
func (s *Store) peek(ctx context.Context, c rowstate.Call) (rowstate.Row, bool, error) {
	return scanRow(s.stmts.read.QueryRowContext(ctx, c.Key, int64(c.Alg)))
}

// read reads c's row, if any, in the transaction of conn.
func (s *Store) read(ctx context.Context, conn *sql.Conn, c rowstate.Call) (rowstate.Row, bool, error) {
	return scanRow(conn.QueryRowContext(ctx, s.q.read, c.Key, int64(c.Alg)))
}

func scanRow(row *sql.Row) (rowstate.Row, bool, error) {
	var r rowstate.Row
	err := row.Scan(&r.At, &r.X, &r.Y, &r.Log, &r.Expires)
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
	return s.core.Reset(ctx, key, alg, func(ctx context.Context) error {
		_, err := s.db.ExecContext(ctx, s.q.reset, key, int64(alg))
		return err
	})
}

// Ping reports whether the database answers, within [Options.Timeout] and ctx.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.core.Guard.Context(ctx)
	defer cancel()
	return s.db.PingContext(ctx)
}
