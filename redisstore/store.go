package redisstore

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/failover"
	"github.com/redis/go-redis/v9"
)

// Options configures a Store. A nil *Options, and every zero field, means the default.
type Options struct {
	// Prefix starts every key the store writes. It must not contain '{' or '}', which
	// would take the Cluster hash tag out of the store's control; calls with such a prefix
	// fail. Default "ratelimit:".
	Prefix string

	// Timeout bounds each call to Redis, retries included, in addition to the caller's
	// context. When the caller's context has a deadline, the call is also bounded by half
	// the time left before it, so that a hung Redis is answered by Policy before the
	// caller gives up, and counted as a failure for the breaker. For go-redis to stop
	// waiting on a socket at this deadline, the client must be created with
	// ContextTimeoutEnabled: true; otherwise its ReadTimeout and WriteTimeout bound the
	// wait. Default 100ms.
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

	// Policy says how calls are answered while Redis fails. Default
	// [ratelimit.FailLocal].
	Policy ratelimit.FailPolicy

	// Local is the store FailLocal answers from. Default: a [memorystore.Store] created by
	// New with default options and closed by [Store.Close]. A Local given here is owned by
	// the caller.
	Local ratelimit.Store

	// SendAlone sends each call's script in a round trip of its own, as go-redis sends a
	// command. By default, on a client of one server (a *redis.Client, which a failover
	// client also is), the scripts of concurrent calls share pipelines: a call finding
	// fewer than eight round trips of the store in flight is sent at once, and the calls
	// that arrive while eight are go together in the next to leave, which costs Redis far
	// less per call (see BENCHMARKS.md). The client's hooks then see these calls as pipelines. A Cluster or
	// Ring client always sends each script alone. It has no effect on a rueidis client,
	// which pipelines by itself.
	SendAlone bool

	// OnError, when set, is called with every failure of Redis: each failed call (the
	// error wraps the backend's error) and each call answered while the breaker is open
	// (the error wraps ErrCircuitOpen). It runs synchronously in the caller's goroutine and
	// must be fast. Default nil. [Store.Stats] counts the same events.
	OnError func(error)
}

// Default option values.
const (
	DefaultPrefix           = "ratelimit:"
	DefaultTimeout          = failover.DefaultTimeout
	DefaultMaxRetries       = 2
	DefaultRetryBackoff     = 2 * time.Millisecond
	DefaultBreakerThreshold = failover.DefaultBreakerThreshold
	DefaultBreakerCooldown  = failover.DefaultBreakerCooldown
)

// Store is a [ratelimit.Store] keeping state in Redis. Create it with [New]; it is safe for
// concurrent use.
type Store struct {
	backend   backend
	prefix    string
	configErr error
	retries   int
	backoff   time.Duration
	guard     *failover.Guard // timeout, breaker, policy answers, OnError, counters

	closed     atomic.Bool
	retryCount atomic.Uint64

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
	var alone bool
	if opts != nil {
		alone = opts.SendAlone
	}
	return build(newGoRedis(client, alone), opts)
}

func build(b backend, opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	s := &Store{
		backend: b,
		prefix:  o.Prefix,
		retries: o.MaxRetries,
		backoff: o.RetryBackoff,
		guard: failover.New(failover.Options{
			Policy:           o.Policy,
			Timeout:          o.Timeout,
			BreakerThreshold: o.BreakerThreshold,
			BreakerCooldown:  o.BreakerCooldown,
			Local:            o.Local,
			OnError:          o.OnError,
			Unavailable:      isUnavailable,
		}),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if strings.ContainsAny(s.prefix, "{}") {
		s.configErr = fmt.Errorf("redisstore: prefix %q contains a brace, which would choose the Cluster hash tag", s.prefix)
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
	return s
}

// Close marks the store closed: later calls return an error wrapping
// [ratelimit.ErrClosed]. It closes the local fallback store if New created it, stopping its
// goroutine, and leaves the Redis client open, except the client [DialRueidis] created,
// which it closes. It is idempotent and returns nil.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.guard.Close()
	if d, ok := s.backend.(*dialedBackend); ok {
		d.close()
	}
	return nil
}

// Ping sends Redis a PING, bounded by ctx and [Options.Timeout], and returns its error:
// nil when Redis answers. It reports the store's state, as a readiness check does; it
// neither counts towards the breaker nor reaches OnError.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ratelimit.ErrClosed
	}
	ctx, cancel := s.guard.Context(ctx)
	defer cancel()
	if err := s.backend.ping(ctx); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
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
	g := s.guard.Stats()
	return Stats{
		Calls:         g.Calls,
		Failures:      g.Failures,
		Retries:       s.retryCount.Load(),
		PolicyAnswers: g.PolicyAnswers,
		BreakerOpens:  g.BreakerOpens,
		BreakerOpen:   g.BreakerOpen,
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
	p, cost, err := s.params(ctx, key, alg, limit, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	var d algo.Decision
	answer, err := s.guard.Do(ctx, func(ctx context.Context) (err error) {
		d, err = s.eval(ctx, key, alg, p, cost)
		return err
	}, func(err error) error { return fmt.Errorf("redisstore: take %q: %w", key, err) })
	switch {
	case answer:
		return s.guard.Answer(ctx, key, alg, limit, n, p, err)
	case err != nil:
		return ratelimit.Result{}, err
	}
	return d.Result(p), nil
}

// eval runs alg's script for key within the store's timeout, retrying only after errors
// that prove the script did not run.
func (s *Store) eval(ctx context.Context, key string, alg ratelimit.Algorithm, p algo.Params, cost uint64) (algo.Decision, error) {
	a := s.lastArgs.Load()
	if a == nil || a.rate != p.Rate || a.period != p.Period || a.cap != p.Cap || a.cost != cost {
		a = newScriptArgs(p, cost)
		s.lastArgs.Store(a)
	}
	keys := [1]string{s.key(key, alg)}
	x, err := s.call(ctx, scripts[alg], keys[:], a.strs[:], a.boxed[:], 6)
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

// call runs sc, retrying within ctx only after errors that prove the script did not run.
// boxed is nil or args boxed (see backend.eval).
func (s *Store) call(ctx context.Context, sc *script, keys, args []string, boxed []any, want int) ([]int64, error) {
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
		s.retryCount.Add(1)
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
	if err := s.guard.Reset(ctx, key, alg); err != nil {
		return err
	}
	ctx, cancel := s.guard.Context(ctx)
	defer cancel()
	if err := s.backend.del(ctx, s.key(key, alg)); err != nil {
		err = fmt.Errorf("redisstore: reset %q: %w", key, err)
		s.guard.Report(err)
		return err
	}
	return nil
}
