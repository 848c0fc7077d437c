package rowstate

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
)

// Default sweep settings of the SQL stores.
const (
	DefaultSweepInterval = time.Second
	DefaultSweepBatch    = 1000
)

// ErrState marks a stored state a store cannot read: an error for the caller, never an
// unavailable database.
var ErrState = errors.New("malformed state")

// StateErr wraps a non-nil err of decoding a row with [ErrState].
func StateErr(err error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

// Config configures a Core.
type Config struct {
	Name    string // the store's package name, which starts its errors
	Failure failover.Settings

	// Unavailable reports whether an error of the database means it could not decide (see
	// [failover.Options]); errors wrapping ErrState never do. Nil: every other error does.
	Unavailable func(error) bool

	// SweepInterval and SweepBatch are the store's options of those names: 0 means the
	// default, a negative SweepInterval starts no sweeping goroutine.
	SweepInterval time.Duration
	SweepBatch    int

	// Delete deletes at most batch expired rows and returns how many it deleted.
	Delete func(ctx context.Context, batch int) (int64, error)
}

// Core is what the SQL stores share around their statements: the checks of every call,
// the failure guard, the sweeping goroutine, closing, and the shells of Take, TakeAll and
// Reset. A store supplies its statements and transactions as functions.
type Core struct {
	name  string
	Guard *failover.Guard

	done      chan struct{}
	swept     sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
}

// NewCore returns a Core configured by c and starts its sweeping goroutine.
func NewCore(c Config) *Core {
	k := &Core{name: c.Name, done: make(chan struct{})}
	k.Guard = c.Failure.Guard(func(err error) bool {
		return !errors.Is(err, ErrState) && (c.Unavailable == nil || c.Unavailable(err))
	})
	every, batch := c.SweepInterval, c.SweepBatch
	if every == 0 {
		every = DefaultSweepInterval
	}
	if batch <= 0 {
		batch = DefaultSweepBatch
	}
	if every > 0 {
		sw := &Sweeper{Name: c.Name, Every: every, Batch: batch, Guard: k.Guard, Delete: c.Delete}
		k.swept.Go(func() { sw.Run(k.done) })
	}
	return k
}

// Close stops the sweeping goroutine, marks the store closed, closes the guard's local
// store if it created it, then runs then (which may be nil) and returns its error. It is
// idempotent: later calls return nil.
func (k *Core) Close(then func() error) error {
	var err error
	k.closeOnce.Do(func() {
		k.closed.Store(true)
		close(k.done)
		k.swept.Wait()
		k.Guard.Close()
		if then != nil {
			err = then()
		}
	})
	return err
}

// Take checks one call and decides it with decide under the guard, answering by the
// store's policy when the database fails.
func (k *Core) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int,
	decide func(context.Context, Call) (algo.Decision, error)) (ratelimit.Result, error) {
	if k.closed.Load() {
		return ratelimit.Result{}, ratelimit.ErrClosed
	}
	c, err := Validate(ctx, key, alg, limit, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	var d algo.Decision
	answer, err := k.Guard.Do(ctx, func(ctx context.Context) (err error) {
		d, err = decide(ctx, c)
		return err
	}, func(err error) error { return fmt.Errorf("%s: take %q: %w", k.name, key, err) })
	switch {
	case answer:
		return k.Guard.Answer(ctx, key, alg, limit, n, c.P, err)
	case err != nil:
		return ratelimit.Result{}, err
	}
	return d.Result(c.P), nil
}

// Batch is a store's transaction as TakeAll uses it. Read reads (and, where the database
// needs it, locks) the row of c and returns it, whether there is one, and the instant of
// the store's clock after it; Write writes c's row.
type Batch struct {
	Read  func(ctx context.Context, c Call) (row Row, found bool, now int64, err error)
	Write func(ctx context.Context, c Call, r Row) error
}

// TakeAll implements [ratelimit.BatchStore] for a store: inTx runs its body in one
// transaction of the store, which commits if the body returns nil. The rows are read in
// (key, algorithm) order, so that concurrent batches lock them in one order, and decided
// together at the last instant read, with every row read.
func (k *Core) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result,
	inTx func(ctx context.Context, body func(Batch) error) error) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("%s: TakeAll: %d results for %d requests", k.name, len(results), len(reqs))
	}
	if k.closed.Load() {
		return false, ratelimit.ErrClosed
	}
	calls, ps, err := ValidateAll(ctx, reqs)
	if err != nil {
		return false, err
	}
	if len(reqs) == 0 {
		return true, nil
	}
	items := make([]Item, len(calls))
	var allowed bool
	answer, err := k.Guard.Do(ctx, func(ctx context.Context) error {
		return inTx(ctx, func(tx Batch) (err error) {
			allowed, err = decideAll(ctx, tx, calls, items)
			return err
		})
	}, func(err error) error { return fmt.Errorf("%s: TakeAll: %w", k.name, err) })
	switch {
	case answer:
		return k.Guard.AnswerAll(ctx, reqs, results, ps, err)
	case err != nil:
		return false, err
	}
	for i, it := range items {
		results[i] = it.D.Result(ps[i])
	}
	return allowed, nil
}

// decideAll reads the rows of calls into items in lock order, steps them all at the last
// instant read, and writes what they took.
func decideAll(ctx context.Context, tx Batch, calls []Call, items []Item) (bool, error) {
	var now int64
	for _, i := range lockOrder(calls) {
		row, found, t, err := tx.Read(ctx, calls[i])
		if err != nil {
			return false, err
		}
		items[i] = Item{Call: calls[i], Row: row, Found: found}
		now = t
	}
	allowed, err := StepAll(items, now)
	if err != nil {
		return false, StateErr(err)
	}
	for _, it := range items {
		if it.Write {
			if err := tx.Write(ctx, it.Call, it.Next); err != nil {
				return false, err
			}
		}
	}
	return allowed, nil
}

// lockOrder returns the indexes of calls ordered by (key, algorithm).
func lockOrder(calls []Call) []int {
	order := make([]int, len(calls))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && less(calls[order[j]], calls[order[j-1]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order
}

func less(a, b Call) bool {
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	return a.Alg < b.Alg
}

// Reset checks a Reset, resets the key in the guard's local store, and runs del, the
// store's delete of the row, under the guard's per-call bound. A failure of the database
// is returned as an error whatever the policy, and reported.
func (k *Core) Reset(ctx context.Context, key string, alg ratelimit.Algorithm, del func(context.Context) error) error {
	if k.closed.Load() {
		return ratelimit.ErrClosed
	}
	if err := ValidateReset(key, alg); err != nil {
		return err
	}
	if err := k.Guard.Reset(ctx, key, alg); err != nil {
		return err
	}
	ctx, cancel := k.Guard.Context(ctx)
	defer cancel()
	if err := del(ctx); err != nil {
		err = fmt.Errorf("%s: reset %q: %w", k.name, key, err)
		k.Guard.Report(err)
		return err
	}
	return nil
}

// Stats returns the guard's counters.
func (k *Core) Stats() failover.Stats { return k.Guard.Stats() }
