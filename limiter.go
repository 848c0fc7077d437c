package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Limiter applies one Algorithm and one Limit to any number of keys kept in a Store.
// It is safe for concurrent use.
type Limiter struct {
	store  Store
	alg    Algorithm
	limit  atomic.Pointer[boundLimit]
	opts   Options
	queues waitQueues
}

// boundLimit is a Limiter's limit, and the limit compiled by its store when the store is a
// CompilingStore and the limit valid (compiled is nil otherwise).
type boundLimit struct {
	limit    Limit
	compiled CompiledLimit
}

// setLimit compiles limit when the store can, and puts it in force.
func (l *Limiter) setLimit(limit Limit) {
	b := &boundLimit{limit: limit}
	if cs, ok := l.store.(CompilingStore); ok {
		if c, err := cs.Compile(l.alg, limit); err == nil {
			b.compiled = c
		}
	}
	l.limit.Store(b)
}

// take is the store's Take of n units of key under the limit in force.
func (l *Limiter) take(ctx context.Context, key string, n int) (Result, error) {
	b := l.limit.Load()
	if b.compiled != nil {
		return b.compiled.Take(ctx, key, n)
	}
	return l.store.Take(ctx, key, l.alg, b.limit, n)
}

// New returns a Limiter that enforces limit with alg on the keys of store. It does not
// fail: an invalid limit or algorithm makes every call return an error wrapping
// [ErrInvalidLimit] or [ErrInvalidAlgorithm]. When store is a [CompilingStore], the limit
// is compiled here and at each [Limiter.SetLimit].
func New(store Store, alg Algorithm, limit Limit) *Limiter {
	return NewWithOptions(store, alg, limit, nil)
}

// NewWithOptions is [New] with options; nil opts is the same as New.
func NewWithOptions(store Store, alg Algorithm, limit Limit, opts *Options) *Limiter {
	l := &Limiter{store: store, alg: alg}
	if opts != nil {
		l.opts = *opts
	}
	l.setLimit(limit)
	return l
}

// Store returns the store the limiter keeps its state in.
func (l *Limiter) Store() Store { return l.store }

// Limit returns the limit in force.
func (l *Limiter) Limit() Limit { return l.limit.Load().limit }

// Algorithm returns the limiter's algorithm.
func (l *Limiter) Algorithm() Algorithm { return l.alg }

// Observer returns the Observer of the limiter's [Options], nil when none. The
// integrations that decide a Limiter's limit through its store, together with other
// limits, report each decision to it as AllowN would.
func (l *Limiter) Observer() Observer { return l.opts.Observer }

// SetLimit changes the limit; it takes effect on the next call. Existing state is kept and
// read under the new limit, as the package documentation describes: token and leaky bucket
// levels are clamped to the new capacity; GCRA and window counts over a lowered limit deny
// until they drain or age out.
func (l *Limiter) SetLimit(limit Limit) { l.setLimit(limit) }

// Allow is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (Result, error) {
	if l.opts.Observer != nil {
		return l.AllowN(ctx, key, 1)
	}
	// take, written out: a call less on the hottest path.
	b := l.limit.Load()
	if b.compiled != nil {
		return b.compiled.Take(ctx, key, 1)
	}
	return l.store.Take(ctx, key, l.alg, b.limit, 1)
}

// AllowN reports whether n units of key may pass now, and takes them if so. n == 0 reports
// without taking. A denial is a Result with Allowed false, not an error; errors mean an
// invalid argument (n < 0, n above the capacity, an invalid limit), a store failure, or an
// ended context.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (Result, error) {
	if l.opts.Observer == nil {
		return l.take(ctx, key, n)
	}
	start := time.Now()
	r, err := l.take(ctx, key, n)
	l.observe(start, key, r, err)
	return r, err
}

// Reset forgets the state of key: it is back to full capacity.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	return l.store.Reset(ctx, key, l.alg)
}

// Wait is WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) error { return l.WaitN(ctx, key, 1) }

// WaitN blocks until n units of key are taken or ctx ends. It returns at once with an error
// matching [context.DeadlineExceeded] when ctx's deadline comes before the units could
// pass, and the context's cause when ctx ends first.
//
// Waiters do not stampede: those that cannot pass at once queue per key, first come first
// served, and only the head of the queue asks the store again, after sleeping exactly the
// Result's RetryAfter. The queue is per Limiter; waiters in other processes sharing a
// store take their chances with the head of this one.
func (l *Limiter) WaitN(ctx context.Context, key string, n int) error {
	r, err := l.AllowN(ctx, key, n)
	if err != nil || r.Allowed {
		return err
	}
	if err := checkDeadline(ctx, key, n, r.RetryAfter); err != nil {
		return err
	}
	q := l.queues.join(key)
	defer l.queues.leave(key, q)
	select {
	case <-q.turn:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { q.turn <- struct{}{} }()

	timer := time.NewTimer(max(r.RetryAfter, time.Nanosecond))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
		r, err := l.AllowN(ctx, key, n)
		if err != nil || r.Allowed {
			return err
		}
		if err := checkDeadline(ctx, key, n, r.RetryAfter); err != nil {
			return err
		}
		timer.Reset(max(r.RetryAfter, time.Nanosecond))
	}
}

// checkDeadline returns an error matching context.DeadlineExceeded if ctx ends before wait.
func checkDeadline(ctx context.Context, key string, n int, wait time.Duration) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	if left := time.Until(deadline); left < wait {
		return fmt.Errorf("ratelimit: wait %q: %d units need %v, the deadline is in %v: %w",
			key, n, wait, left, context.DeadlineExceeded)
	}
	return nil
}

// waitQueues holds one queue per key that has waiters.
type waitQueues struct {
	mu sync.Mutex
	m  map[string]*waitQueue
}

// waitQueue orders the waiters of one key: the one holding turn asks the store; the others
// block receiving from it, and Go wakes blocked receivers in arrival order.
type waitQueue struct {
	turn    chan struct{}
	waiters int // guarded by waitQueues.mu
}

func (w *waitQueues) join(key string) *waitQueue {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.m[key]
	if q == nil {
		if w.m == nil {
			w.m = make(map[string]*waitQueue)
		}
		q = &waitQueue{turn: make(chan struct{}, 1)}
		q.turn <- struct{}{}
		w.m[key] = q
	}
	q.waiters++
	return q
}

func (w *waitQueues) leave(key string, q *waitQueue) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if q.waiters--; q.waiters == 0 {
		delete(w.m, key)
	}
}
