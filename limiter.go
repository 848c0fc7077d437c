package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Limiter applies one Algorithm and one Limit to any number of keys kept in a Store.
// It is safe for concurrent use.
type Limiter struct {
	store Store
	alg   Algorithm
	limit atomic.Pointer[Limit]
}

// New returns a Limiter that enforces limit with alg on the keys of store. It does not
// fail: an invalid limit or algorithm makes every call return an error wrapping
// [ErrInvalidLimit] or [ErrInvalidAlgorithm].
func New(store Store, alg Algorithm, limit Limit) *Limiter {
	l := &Limiter{store: store, alg: alg}
	l.limit.Store(&limit)
	return l
}

// Limit returns the limit in force.
func (l *Limiter) Limit() Limit { return *l.limit.Load() }

// Algorithm returns the limiter's algorithm.
func (l *Limiter) Algorithm() Algorithm { return l.alg }

// SetLimit changes the limit; it takes effect on the next call. Existing state is kept and
// read under the new limit: bucket levels are clamped to the new capacity, and window counts
// above a lowered Rate deny until they age out.
func (l *Limiter) SetLimit(limit Limit) { l.limit.Store(&limit) }

// Allow is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (Result, error) {
	return l.store.Take(ctx, key, l.alg, *l.limit.Load(), 1)
}

// AllowN reports whether n units of key may pass now, and takes them if so. n == 0 reports
// without taking. A denial is a Result with Allowed false, not an error; errors mean an
// invalid argument (n < 0, n above the capacity, an invalid limit), a store failure, or an
// ended context.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (Result, error) {
	return l.store.Take(ctx, key, l.alg, *l.limit.Load(), n)
}

// Reset forgets the state of key: it is back to full capacity.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	return l.store.Reset(ctx, key, l.alg)
}

// Wait is WaitN(ctx, key, 1).
func (l *Limiter) Wait(ctx context.Context, key string) error { return l.WaitN(ctx, key, 1) }

// WaitN blocks until n units of key are taken or ctx ends. It returns at once with an error
// matching [context.DeadlineExceeded] when ctx's deadline comes before the units could pass.
//
// Each waiter sleeps exactly the Result's RetryAfter, the minimal wait, between attempts,
// so it never polls; when several waiters contend for one key, a waiter that loses a race
// sleeps again until its next chance.
func (l *Limiter) WaitN(ctx context.Context, key string, n int) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r, err := l.store.Take(ctx, key, l.alg, *l.limit.Load(), n)
		if err != nil {
			return err
		}
		if r.Allowed {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < r.RetryAfter {
			return fmt.Errorf("ratelimit: wait %q: %w: %d units need %v, deadline is in %v",
				key, context.DeadlineExceeded, n, r.RetryAfter, time.Until(deadline))
		}
		wait := max(r.RetryAfter, time.Nanosecond)
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
	}
}
