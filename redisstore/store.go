package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/redis/go-redis/v9"
)

// Policy says how a Store answers while Redis cannot: after a failed call, and while the
// circuit breaker is open. The zero value is [FailLocal].
type Policy uint8

const (
	// FailLocal answers from an in-memory store ([Options.Local], by default a
	// [memorystore.Store]) with the same algorithm and limit. Every process then enforces
	// the whole limit on its own, so a fleet of k processes admits up to k times the limit
	// while Redis is down: the service stays up and abusers are still slowed. The local
	// state starts empty and is not merged back when Redis returns.
	FailLocal Policy = iota

	// FailOpen allows every call: Allowed true, Remaining the capacity minus n,
	// RetryAfter and ResetAfter 0. Nothing is limited while Redis is down.
	FailOpen

	// FailClosed denies every call: Allowed false, Remaining 0, RetryAfter the time until
	// the breaker next tries Redis (at least [Options.Timeout]), so waiters do not spin.
	// Nothing passes while Redis is down.
	FailClosed

	// FailError returns the failure as an error wrapping the backend's error (or
	// [ErrCircuitOpen]) and a zero Result, for callers that decide themselves, such as a
	// service that lets its client apply a failure mode.
	FailError
)

// String returns "fail_local", "fail_open", "fail_closed" or "fail_error".
func (p Policy) String() string {
	switch p {
	case FailLocal:
		return "fail_local"
	case FailOpen:
		return "fail_open"
	case FailClosed:
		return "fail_closed"
	case FailError:
		return "fail_error"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ErrCircuitOpen is what [Options.OnError] receives, wrapped, and what [FailError] returns,
// wrapped, for calls answered without trying Redis because the circuit breaker is open.
var ErrCircuitOpen = errors.New("redisstore: circuit open")

// Options configures a Store. A nil *Options, and every zero field, means the default.
type Options struct {
	// Prefix starts every key the store writes. It must not contain '{' or '}', which
	// would take the Cluster hash tag out of the store's control; calls with such a prefix
	// fail. Default "ratelimit:".
	Prefix string

	// Timeout bounds each call to Redis, retries included, in addition to the caller's
	// context. For go-redis to stop waiting on a socket at this deadline, the client must
	// be created with ContextTimeoutEnabled: true; otherwise its ReadTimeout and
	// WriteTimeout bound the wait. Default 100ms.
	Timeout time.Duration

	// MaxRetries is how many times a call is retried after an error that proves the script
	// did not run: a refused or failed dial, a connection pool timeout, or a server reply of
	// LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN or READONLY. Retries wait
	// RetryBackoff, doubling, within Timeout. A call that may have run is never retried.
	// Default 2; a negative value disables retries.
	MaxRetries int

	// RetryBackoff is the wait before the first retry; it doubles for each next one.
	// Default 2ms.
	RetryBackoff time.Duration

	// BreakerThreshold is the number of consecutive failed calls after which the circuit
	// breaker opens: calls are then answered by Policy at once, without trying Redis.
	// Default 5; a negative value disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long the breaker stays open. Then one call probes Redis while
	// the others keep being answered by Policy; the probe's success closes the breaker, its
	// failure opens it for another cool-down. Default 1s.
	BreakerCooldown time.Duration

	// Policy says how calls are answered while Redis fails. Default FailLocal.
	Policy Policy

	// Local is the store FailLocal answers from. Default: a [memorystore.Store] created by
	// New with default options and closed by [Store.Close]. A Local given here is owned by
	// the caller.
	Local ratelimit.Store

	// OnError, when set, is called with every failure of Redis: each failed call (the
	// error wraps the backend's error) and each call answered while the breaker is open
	// (the error wraps ErrCircuitOpen). It runs synchronously in the caller's goroutine and
	// must be fast. Default nil. [Store.Stats] counts the same events.
	OnError func(error)
}

// Default option values.
const (
	DefaultPrefix           = "ratelimit:"
	DefaultTimeout          = 100 * time.Millisecond
	DefaultMaxRetries       = 2
	DefaultRetryBackoff     = 2 * time.Millisecond
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = time.Second
)

// Store is a [ratelimit.Store] keeping state in Redis. Create it with [New]; it is safe for
// concurrent use.
type Store struct {
	backend   backend
	prefix    string
	configErr error
	timeout   time.Duration
	retries   int
	backoff   time.Duration
	policy    Policy
	onError   func(error)
	breaker   breaker

	local     ratelimit.Store
	ownsLocal bool

	closed    atomic.Bool
	closeOnce sync.Once

	stats struct {
		calls, failures, retries, policyAnswers, breakerOpen atomic.Uint64
	}

	lastArgs atomic.Pointer[scriptArgs] // the arguments of the last decision's limit
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a Store that keeps its state in Redis through client, configured by opts
// (nil means defaults). The caller owns client: [Store.Close] does not close it.
//
// client may be a *redis.Client, *redis.ClusterClient, a failover client from
// redis.NewFailoverClient, or a *redis.Ring. Its own retries do not apply to the store's
// scripts (see the package documentation).
func New(client redis.UniversalClient, opts *Options) *Store {
	return build(&goRedis{c: client}, opts)
}

func build(b backend, opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Store{
		backend: b,
		prefix:  o.Prefix,
		timeout: o.Timeout,
		retries: o.MaxRetries,
		backoff: o.RetryBackoff,
		policy:  o.Policy,
		onError: o.OnError,
		local:   o.Local,
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if strings.ContainsAny(s.prefix, "{}") {
		s.configErr = fmt.Errorf("redisstore: prefix %q contains a brace, which would choose the Cluster hash tag", s.prefix)
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	switch {
	case s.retries == 0:
		s.retries = DefaultMaxRetries
	case s.retries < 0:
		s.retries = 0
	}
	if s.backoff <= 0 {
		s.backoff = DefaultRetryBackoff
	}
	threshold, cooldown := o.BreakerThreshold, o.BreakerCooldown
	if threshold == 0 {
		threshold = DefaultBreakerThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultBreakerCooldown
	}
	s.breaker.init(threshold, cooldown)
	if s.policy == FailLocal && s.local == nil {
		s.local = memorystore.New(nil)
		s.ownsLocal = true
	}
	return s
}

// Close marks the store closed: later calls return an error wrapping
// [ratelimit.ErrClosed]. It closes the local fallback store if New created it, stopping its
// goroutine, and leaves the Redis client open. It is idempotent and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if c, ok := s.local.(interface{ Close() error }); ok && s.ownsLocal {
			_ = c.Close()
		}
	})
	return nil
}

// Stats are counters of a Store's calls since New. Each is monotonic.
type Stats struct {
	Calls         uint64 // Take calls that passed validation
	Failures      uint64 // calls to Redis that failed (after retries)
	Retries       uint64 // retries after errors proving the script did not run
	PolicyAnswers uint64 // Take calls answered by Policy instead of Redis
	BreakerOpens  uint64 // times the circuit breaker opened
	BreakerOpen   bool   // whether the breaker is open now
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Calls:         s.stats.calls.Load(),
		Failures:      s.stats.failures.Load(),
		Retries:       s.stats.retries.Load(),
		PolicyAnswers: s.stats.policyAnswers.Load(),
		BreakerOpens:  s.stats.breakerOpen.Load(),
		BreakerOpen:   s.breaker.isOpen(time.Now()),
	}
}

// Limits of the exact Lua arithmetic (see the package documentation).
const (
	maxRate   = 1 << 43 // Rate and Burst
	maxPeriod = (1 << 50) * time.Microsecond
)

// params validates the arguments of a call as every store does, then the range this store
// computes exactly in.
func (s *Store) params(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (algo.Params, uint64, error) {
	if s.closed.Load() {
		return algo.Params{}, 0, ratelimit.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return algo.Params{}, 0, err
	}
	if err := ratelimit.CheckKey(key); err != nil {
		return algo.Params{}, 0, err
	}
	p, err := algo.NewParams(alg, limit)
	if err != nil {
		return algo.Params{}, 0, err
	}
	cost, err := p.Cost(n)
	if err != nil {
		return algo.Params{}, 0, err
	}
	switch {
	case limit.Period%time.Microsecond != 0:
		return p, 0, fmt.Errorf("%w: redisstore: period %v is not a whole number of microseconds, the resolution of the Redis clock", ratelimit.ErrInvalidLimit, limit.Period)
	case limit.Period > maxPeriod:
		return p, 0, fmt.Errorf("%w: redisstore: period %v exceeds %v", ratelimit.ErrInvalidLimit, limit.Period, maxPeriod)
	case p.Rate > maxRate || p.Cap > maxRate:
		return p, 0, fmt.Errorf("%w: redisstore: rate and burst must not exceed %d", ratelimit.ErrInvalidLimit, uint64(maxRate))
	}
	if s.configErr != nil {
		return p, 0, s.configErr
	}
	return p, cost, nil
}

// Take implements [ratelimit.Store]: one EVALSHA decides and updates the key atomically,
// on the Redis server's clock. When Redis fails, the answer follows [Options.Policy].
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	return s.take(ctx, key, alg, limit, n, -1)
}

// take is Take; nowMicros ≥ 0 is a simulated instant for tests (see lua/prelude.lua),
// never used in production.
func (s *Store) take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int, nowMicros int64) (ratelimit.Result, error) {
	p, cost, err := s.params(ctx, key, alg, limit, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	s.stats.calls.Add(1)

	probe, ok := s.breaker.allow(time.Now())
	if !ok {
		return s.fallback(ctx, key, alg, limit, n, p, ErrCircuitOpen)
	}
	d, err := s.eval(ctx, key, alg, p, cost, nowMicros)
	switch {
	case err == nil:
		s.breaker.success(probe)
		return d.Result(p), nil
	case ctx.Err() != nil:
		// The caller gave up: no verdict on Redis.
		s.breaker.release(probe)
		return ratelimit.Result{}, fmt.Errorf("redisstore: take %q: %w", key, context.Cause(ctx))
	case !isUnavailable(err):
		// Redis answered, but not as a healthy store does (a key of another type, a
		// surprising reply): an error for the caller rather than a policy.
		s.breaker.release(probe)
		err = fmt.Errorf("redisstore: take %q: %w", key, err)
		s.report(err)
		return ratelimit.Result{}, err
	}
	s.stats.failures.Add(1)
	if s.breaker.failure(probe, time.Now()) {
		s.stats.breakerOpen.Add(1)
	}
	return s.fallback(ctx, key, alg, limit, n, p, fmt.Errorf("redisstore: take %q: %w", key, err))
}

// fallback answers by policy after cause.
func (s *Store) fallback(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int, p algo.Params, cause error) (ratelimit.Result, error) {
	s.stats.policyAnswers.Add(1)
	s.report(cause)
	switch s.policy {
	case FailOpen:
		return algo.Decision{Allowed: true, Remaining: p.Cap - uint64(n)}.Result(p), nil
	case FailClosed:
		wait := max(s.breaker.untilProbe(time.Now()), s.timeout)
		return algo.Decision{RetryAfter: int64(wait), ResetAfter: int64(wait)}.Result(p), nil
	case FailLocal:
		if s.local != nil {
			return s.local.Take(ctx, key, alg, limit, n)
		}
	}
	return ratelimit.Result{}, cause
}

func (s *Store) report(err error) {
	if s.onError != nil {
		s.onError(err)
	}
}

// eval runs alg's script for key within the store's timeout, retrying only after errors
// that prove the script did not run.
func (s *Store) eval(ctx context.Context, key string, alg ratelimit.Algorithm, p algo.Params, cost uint64, nowMicros int64) (algo.Decision, error) {
	var args []string
	var boxed []any
	if nowMicros >= 0 {
		a := newScriptArgs(p, cost)
		args = append(a.strs[:], strconv.FormatInt(nowMicros, 10))
	} else {
		a := s.lastArgs.Load()
		if a == nil || a.rate != p.Rate || a.period != p.Period || a.cap != p.Cap || a.cost != cost {
			a = newScriptArgs(p, cost)
			s.lastArgs.Store(a)
		}
		args, boxed = a.strs[:], a.boxed[:]
	}
	keys := [1]string{s.key(key, alg)}
	x, err := s.call(ctx, scripts[alg], keys[:], args, boxed, 6)
	if err != nil {
		return algo.Decision{}, err
	}
	return decode(x)
}

// scriptArgs are the arguments of a single decision's script for one limit and cost,
// formatted and boxed once: a store mostly decides under few limits, and formatting and
// boxing them was a third of a call's allocations. Shared, never modified.
type scriptArgs struct {
	rate, period, cap, cost uint64
	strs                    [5]string
	boxed                   [5]any
}

func newScriptArgs(p algo.Params, cost uint64) *scriptArgs {
	a := &scriptArgs{rate: p.Rate, period: p.Period, cap: p.Cap, cost: cost}
	a.strs = [5]string{strconv.FormatUint(p.Rate, 10), strconv.FormatUint(p.Period/1000, 10),
		strconv.FormatUint(p.Cap, 10), strconv.FormatUint(cost, 10), strconv.FormatInt(fillMicros(p), 10)}
	for i, x := range a.strs {
		a.boxed[i] = x
	}
	return a
}

// call runs sc within the store's timeout, retrying only after errors that prove the
// script did not run. boxed is nil or args boxed (see backend.eval).
func (s *Store) call(ctx context.Context, sc *script, keys, args []string, boxed []any, want int) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	backoff := s.backoff
	for attempt := 0; ; attempt++ {
		x, err := s.backend.eval(ctx, sc, keys, args, boxed, want)
		if err == nil {
			return x, nil
		}
		if attempt >= s.retries || !provesNotRun(err) || ctx.Err() != nil {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < backoff {
			return nil, err
		}
		s.stats.retries.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff *= 2
	}
}

// fillMicros returns ⌈Cap·Period/Rate⌉ in microseconds, the time from empty to full. It
// fits: Limit.Validate bounds it by about 146 years.
func fillMicros(p algo.Params) int64 {
	hi, lo := bits.Mul64(p.Cap, p.Period/1000)
	q, r := bits.Div64(hi, lo, p.Rate)
	if r != 0 {
		q++
	}
	return int64(q)
}

// Reset implements [ratelimit.Store]: it deletes the key's state in Redis, and in the
// local fallback store. A failure of Redis is returned as an error whatever the policy.
func (s *Store) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if s.closed.Load() {
		return ratelimit.ErrClosed
	}
	if err := ratelimit.CheckKey(key); err != nil {
		return err
	}
	if !alg.Valid() {
		return fmt.Errorf("%w: %v", ratelimit.ErrInvalidAlgorithm, alg)
	}
	if s.configErr != nil {
		return s.configErr
	}
	if s.local != nil {
		if err := s.local.Reset(ctx, key, alg); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.backend.del(ctx, s.key(key, alg)); err != nil {
		err = fmt.Errorf("redisstore: reset %q: %w", key, err)
		s.report(err)
		return err
	}
	return nil
}
