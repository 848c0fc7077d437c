// Package failover is the failure mechanism shared by the stores whose state lives in a
// server or a database (redisstore, sqlitestore, pgstore): a per-call timeout, a circuit
// breaker, the answers of [ratelimit.FailPolicy] (with the in-memory store FailLocal
// answers from), the OnError hook and the failure counters. A store runs each backend call
// through [Guard.Do] and, when told to, answers by [Guard.Answer] or [Guard.AnswerAll]; what
// counts as unavailability and whether a failed call may be retried stay with the store,
// which alone knows its backend.
package failover

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// Default option values.
const (
	DefaultTimeout          = 100 * time.Millisecond
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = time.Second
)

// Options configures a Guard. Every zero field means the default.
type Options struct {
	// Policy says how calls are answered while the backend fails. Default FailLocal.
	Policy ratelimit.FailPolicy

	// Timeout bounds each backend call, in addition to the caller's context. Default
	// DefaultTimeout.
	Timeout time.Duration

	// BreakerThreshold is the number of consecutive failed calls that opens the breaker.
	// Default DefaultBreakerThreshold; a negative value disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long the breaker stays open before a probe. Default
	// DefaultBreakerCooldown.
	BreakerCooldown time.Duration

	// Local is the store FailLocal answers from. Default: a memorystore.Store created by
	// New and closed by [Guard.Close]; a Local given here is the caller's.
	Local ratelimit.Store

	// OnError, when set, receives every failure, synchronously.
	OnError func(error)

	// Unavailable reports whether an error of a backend call means that the backend could
	// not decide, so that the call is a failure answered by Policy, rather than an answer
	// that is an error for the caller (a value of the wrong type, a constraint). Default:
	// every error is unavailability.
	Unavailable func(error) bool
}

// Guard runs a store's backend calls. It is safe for concurrent use.
type Guard struct {
	policy      ratelimit.FailPolicy
	timeout     time.Duration
	onError     func(error)
	unavailable func(error) bool
	breaker     breaker

	local     ratelimit.Store
	ownsLocal bool
	closeOnce sync.Once

	calls, failures, policyAnswers, breakerOpens atomic.Uint64
}

// New returns a Guard configured by o.
func New(o Options) *Guard {
	g := &Guard{
		policy:      o.Policy,
		timeout:     o.Timeout,
		onError:     o.OnError,
		unavailable: o.Unavailable,
		local:       o.Local,
	}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	threshold, cooldown := o.BreakerThreshold, o.BreakerCooldown
	if threshold == 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	g.breaker.init(threshold, cooldown)
	if g.policy == ratelimit.FailLocal && g.local == nil {
		g.local = memorystore.New(nil)
		g.ownsLocal = true
	}
	return g
}

// Close closes the local fallback store if New created it, stopping its goroutine. It is
// idempotent.
func (g *Guard) Close() {
	g.closeOnce.Do(func() {
		if c, ok := g.local.(interface{ Close() error }); ok && g.ownsLocal {
			_ = c.Close()
		}
	})
}

// Context returns the context one backend call runs under: ctx bounded by the per-call
// timeout and, when ctx has a deadline, by half the time left before it. A backend that
// hangs behind a caller's short deadline (Envoy gives a rate limit call 20ms by default)
// then fails the call at its bound, while the caller still has the other half to receive
// the policy's answer: [Guard.Do] counts such a call as a failure, for the breaker too,
// rather than as a caller who gave up. Every bound on a backend call is decided here, for
// Do and for the calls a store makes outside it (Reset). The caller must call the
// CancelFunc.
func (g *Guard) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	bound := g.timeout
	if deadline, ok := ctx.Deadline(); ok {
		bound = min(bound, time.Until(deadline)/deadlineShare)
	}
	return context.WithTimeout(ctx, bound)
}

// deadlineShare is the part of the time left before the caller's deadline, 1/deadlineShare,
// that one backend call may take.
const deadlineShare = 2

// Do runs op, one backend call of a Take or TakeAll, under [Guard.Context] and the
// breaker, and says how the store answers:
//
//   - op succeeded: (false, nil), and the store answers from op's result;
//   - the caller's ctx was canceled: (false, wrap of the context's cause), no verdict on
//     the backend;
//   - the caller's deadline passed: (false, wrap of the context's cause), counted as a
//     failure, since the call's bound (see [Guard.Context]) passed before it;
//   - op failed with an error that is not unavailability: (false, wrap of it), reported
//     to OnError;
//   - op failed with unavailability, or the breaker is open and op did not run: (true,
//     wrap of op's error, or [ratelimit.ErrCircuitOpen]); the store then returns
//     [Guard.Answer] or [Guard.AnswerAll] with that error as the cause.
//
// Do never retries: op retries, within its context, only what it knows did not run. wrap,
// which adds the store's name and operation to an error, may be nil. Neither op nor wrap is
// kept after Do returns.
func (g *Guard) Do(ctx context.Context, op func(context.Context) error, wrap func(error) error) (answer bool, err error) {
	g.calls.Add(1)
	probe, ok := g.breaker.allow(time.Now())
	if !ok {
		return true, ratelimit.ErrCircuitOpen
	}
	callCtx, cancel := g.Context(ctx)
	err = op(callCtx)
	cancel()
	if err == nil {
		g.breaker.success(probe)
		return false, nil
	}
	if wrap == nil {
		wrap = func(err error) error { return err }
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up before the call's bound: no verdict on the backend.
		g.breaker.release(probe)
		return false, wrap(context.Cause(ctx))
	case ctx.Err() != nil:
		// The caller's deadline passed, so the call's bound, half as far, passed before
		// it: the backend did not answer in time, a failure, though too late to answer.
		g.fail(probe)
		return false, wrap(context.Cause(ctx))
	case g.unavailable != nil && !g.unavailable(err):
		g.breaker.release(probe)
		err = wrap(err)
		g.Report(err)
		return false, err
	}
	g.fail(probe)
	return true, wrap(err)
}

// fail records a failed backend call.
func (g *Guard) fail(probe bool) {
	g.failures.Add(1)
	if g.breaker.failure(probe, time.Now()) {
		g.breakerOpens.Add(1)
	}
}

// Answer answers a Take by policy after cause, the error [Guard.Do] returned. p holds the
// call's validated parameters.
func (g *Guard) Answer(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int, p algo.Params, cause error) (ratelimit.Result, error) {
	g.policyAnswers.Add(1)
	g.Report(cause)
	switch g.policy {
	case ratelimit.FailOpen:
		return algo.Decision{Allowed: true, Remaining: p.Cap - uint64(n)}.Result(p), nil
	case ratelimit.FailClosed:
		wait := int64(g.closedWait())
		return algo.Decision{RetryAfter: wait, ResetAfter: wait}.Result(p), nil
	case ratelimit.FailLocal:
		if g.local != nil {
			return g.local.Take(ctx, key, alg, limit, n)
		}
	}
	return ratelimit.Result{}, cause
}

// AnswerAll answers a TakeAll by policy after cause, as a whole: FailLocal uses the local
// store's TakeAll. ps holds each request's validated parameters.
func (g *Guard) AnswerAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result, ps []algo.Params, cause error) (bool, error) {
	g.policyAnswers.Add(1)
	g.Report(cause)
	switch g.policy {
	case ratelimit.FailOpen:
		for i, r := range reqs {
			results[i] = algo.Decision{Allowed: true, Remaining: ps[i].Cap - uint64(r.N)}.Result(ps[i])
		}
		return true, nil
	case ratelimit.FailClosed:
		wait := int64(g.closedWait())
		for i := range reqs {
			results[i] = algo.Decision{RetryAfter: wait, ResetAfter: wait}.Result(ps[i])
		}
		return false, nil
	case ratelimit.FailLocal:
		if g.local != nil {
			return ratelimit.TakeAll(ctx, g.local, reqs, results)
		}
	}
	return false, cause
}

// closedWait is the RetryAfter of a FailClosed denial: until the breaker next lets a call
// through, and at least the per-call timeout.
func (g *Guard) closedWait() time.Duration {
	return max(g.breaker.untilProbe(time.Now()), g.timeout)
}

// Reset resets key in the local fallback store, if there is one.
func (g *Guard) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if g.local == nil {
		return nil
	}
	return g.local.Reset(ctx, key, alg)
}

// Report passes err to OnError, if set.
func (g *Guard) Report(err error) {
	if g.onError != nil {
		g.onError(err)
	}
}

// Stats are a Guard's counters since New. Each is monotonic.
type Stats struct {
	Calls         uint64 // calls to Do
	Failures      uint64 // backend calls that failed with unavailability
	PolicyAnswers uint64 // calls answered by policy instead of the backend
	BreakerOpens  uint64 // times the breaker opened
	BreakerOpen   bool   // whether the breaker is open now
}

// Stats returns the guard's counters.
func (g *Guard) Stats() Stats {
	return Stats{
		Calls:         g.calls.Load(),
		Failures:      g.failures.Load(),
		PolicyAnswers: g.policyAnswers.Load(),
		BreakerOpens:  g.breakerOpens.Load(),
		BreakerOpen:   g.breaker.isOpen(time.Now()),
	}
}
