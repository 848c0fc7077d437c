// Package storetest is the conformance suite every [ratelimit.Store] must pass: the
// in-memory store, the Redis store, and any store written later. A store's tests call
// [Run] with a [Harness] that makes fresh stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			Synctest: true,
//			New: func(t *testing.T) ratelimit.Store {
//				s := memorystore.New(nil)
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//		})
//	}
//
// The suite checks the contract of the package documentation of ratelimit, algorithm by
// algorithm: capacities and Remaining, denials that change nothing, peeks with n = 0,
// RetryAfter and ResetAfter (bounds, and that waiting them out is enough), epoch-aligned
// windows and the boundary burst, bursts after idle, refill, Reset, isolation of keys and
// algorithms, many keys, concurrent callers, limit changes, and the errors. Every Result
// it sees is also held to what any Result must satisfy: the effective Limit, Remaining
// within the capacity, RetryAfter 0 exactly when allowed and otherwise within its worst
// case, ResetAfter within its worst case and 0 exactly when the key is at full capacity.
//
// With [Harness.Synctest] every test runs in a [testing/synctest] bubble: sleeps take no
// time and every duration is checked to the nanosecond, including that waiting 1 ns less
// than RetryAfter or ResetAfter is not enough. Without it the suite sleeps for real, with
// short periods for the tests of time and long ones for the tests of counts, and allows
// the store's clock a resolution of one microsecond. A test of time against a real clock
// watches its own schedule: when a call ends later than the margins of its checks allow
// (a loaded machine, a descheduled process), what that run saw proves nothing either way,
// and the test runs again on a fresh store at twice the time scale (see runTimed).
package storetest

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Harness describes the store under test.
type Harness struct {
	// New returns a fresh, empty store for one test. It registers its own cleanup with
	// t.Cleanup. Under Synctest it is called inside the test's bubble, so the store's
	// goroutines belong to the bubble, and its cleanup runs there.
	New func(t *testing.T) ratelimit.Store

	// Synctest runs every test inside [synctest.Test], so time.Sleep advances a fake clock
	// at once. Stores that read time.Now (memorystore) set it; stores with an external clock
	// (Redis: server TIME, microseconds) do not, and then the suite sleeps for real, with
	// periods long enough to absorb scheduling jitter but keep the whole suite short.
	Synctest bool
}

// Run runs the conformance suite against the store h describes, each test a subtest of t
// with its own store.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	s := &suite{h: h, scale: 1, period: 300 * time.Millisecond, slack: 5 * time.Millisecond, tol: time.Microsecond}
	if h.Synctest {
		s.period, s.slack, s.tol = time.Second, 0, 0
	}
	t.Run("Fresh", s.testFresh)
	t.Run("DenialChangesNothing", s.testDenial)
	t.Run("Peek", s.testPeek)
	t.Run("Cost", s.testCost)
	t.Run("RetryAfter", s.testRetryAfter)
	t.Run("ResetAfter", s.testResetAfter)
	t.Run("Rollover", s.testRollover)
	t.Run("BoundaryBurst", s.testBoundaryBurst)
	t.Run("BurstAfterIdle", s.testBurstAfterIdle)
	t.Run("Refill", s.testRefill)
	t.Run("LongIdle", s.testLongIdle)
	t.Run("Trace", s.testTrace)
	t.Run("Reset", s.testReset)
	t.Run("Isolation", s.testIsolation)
	t.Run("ManyKeys", s.testManyKeys)
	t.Run("Concurrency", s.testConcurrency)
	t.Run("LargeLimits", s.testLargeLimits)
	t.Run("LimitChange", s.testLimitChange)
	t.Run("Errors", s.testErrors)
}

// algorithms are the six algorithms, in order.
var algorithms = []ratelimit.Algorithm{
	ratelimit.FixedWindow,
	ratelimit.SlidingWindowLog,
	ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket,
	ratelimit.LeakyBucket,
	ratelimit.GCRA,
}

// buckets are the algorithms whose capacity is Burst.
var buckets = []ratelimit.Algorithm{ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA}

// windows are the algorithms whose capacity is Rate.
var windows = []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter}

func isBucket(alg ratelimit.Algorithm) bool {
	return alg == ratelimit.TokenBucket || alg == ratelimit.LeakyBucket || alg == ratelimit.GCRA
}

// suite holds the harness and the time scale of the tests of time behaviour.
type suite struct {
	h Harness

	// scale multiplies the durations of the tests of time: 1, doubled by each new attempt
	// of runTimed.
	scale time.Duration

	// period is the Period of the tests that sleep: 1s under synctest; with real time,
	// short enough to keep the suite quick, long enough that a few calls in a row take a
	// small fraction of it.
	period time.Duration

	// slack is added to real sleeps that must reach an instant, for the store's clock
	// resolution and scheduling; 0 under synctest.
	slack time.Duration

	// tol is the rounding allowed on the bounds of durations: the store's clock resolution.
	tol time.Duration

	// clock watches the schedule of a test of time against a real clock; nil otherwise.
	clock *attempt
}

// run runs f as the subtest name with a fresh store, inside a synctest bubble when the
// harness asks for one.
func (s *suite) run(t *testing.T, name string, f func(t *testing.T, st ratelimit.Store)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		if s.h.Synctest {
			synctest.Test(t, func(t *testing.T) { f(t, s.h.New(t)) })
			return
		}
		f(t, s.h.New(t))
	})
}

// synctestOnly skips t when the clock is real.
func (s *suite) synctestOnly(t *testing.T) {
	t.Helper()
	if !s.h.Synctest {
		t.Skip("needs the exact clock of a synctest bubble")
	}
}

// sleep waits d, plus the slack with a real clock. The calls after it are planned d plus
// the slack after those before it.
func (s *suite) sleep(d time.Duration) {
	time.Sleep(d + s.slack)
	if a := s.clock; a != nil && !a.due.IsZero() {
		a.due = a.due.Add(d + s.slack)
	}
}

// align waits d to reach an instant, such as a window's boundary: the calls after it are
// planned at that instant.
func (s *suite) align(d time.Duration) {
	at := time.Now().Add(d)
	time.Sleep(d)
	if a := s.clock; a != nil {
		a.due = at
	}
}

// sleepExact waits exactly d; only meaningful under synctest.
func sleepExact(d time.Duration) { time.Sleep(d) }

// untilBoundary returns the time from now to the next epoch-aligned boundary of windows
// of length period.
func untilBoundary(period time.Duration) time.Duration {
	return period - time.Duration(time.Now().UnixNano()%int64(period))
}

// room makes sure the current epoch-aligned window of length period has at least need
// left, sleeping into the next window if not, so that a batch of calls that must fall in
// one window does. Under synctest it never sleeps when the clock is at a boundary.
func (s *suite) room(period, need time.Duration) {
	if d := untilBoundary(period); d < need {
		s.align(d + s.slack)
	}
}

// countPeriod is the Period of the tests of counts: long enough that nothing refills or
// rolls over while they run. Window tests call room(countPeriod, countRoom) first.
const (
	countPeriod = time.Hour
	countRoom   = 20 * time.Second
)

// effective returns the effective limit a Result reports: l with Burst set to the
// capacity.
func effective(alg ratelimit.Algorithm, l ratelimit.Limit) ratelimit.Limit {
	if !isBucket(alg) || l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l
}

// capacity returns the most units alg lets pass at once under l.
func capacity(alg ratelimit.Algorithm, l ratelimit.Limit) int { return effective(alg, l).Burst }

// interval returns ⌈n·Period/Rate⌉: the time a bucket needs to regain n units.
func interval(l ratelimit.Limit, n int) time.Duration {
	hi, lo := bits.Mul64(uint64(n), uint64(l.Period))
	q, r := bits.Div64(hi, lo, uint64(l.Rate))
	if r != 0 {
		q++
	}
	return time.Duration(q)
}

// maxRetry bounds RetryAfter for a denied n: the rest of the window for FixedWindow,
// Period for SlidingWindowLog, two Periods for SlidingWindowCounter, and the time to regain
// n units for the buckets.
func maxRetry(alg ratelimit.Algorithm, l ratelimit.Limit, n int) time.Duration {
	switch alg {
	case ratelimit.SlidingWindowCounter:
		return addSat(l.Period, l.Period)
	case ratelimit.FixedWindow, ratelimit.SlidingWindowLog:
		return l.Period
	}
	return interval(l, n)
}

// addSat returns a + b for non-negative durations, saturated at the largest Duration.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// maxReset bounds ResetAfter: as maxRetry, with the whole capacity for the buckets.
func maxReset(alg ratelimit.Algorithm, l ratelimit.Limit) time.Duration {
	if isBucket(alg) {
		return interval(l, capacity(alg, l))
	}
	return maxRetry(alg, l, 0)
}

// check reports the violations by r, the Result of what (a description of the call), of
// the invariants every Result must satisfy whatever the state of the key. When the key was
// charged under another limit (changed), a key over a lowered limit may deny n == 0 and
// wait longer than l alone allows, so the bounds on durations are not checked. It is
// safe to call from several goroutines.
func (s *suite) check(t reporter, what string, alg ratelimit.Algorithm, l ratelimit.Limit, changed bool, n int, r ratelimit.Result) {
	t.Helper()
	eff := effective(alg, l)
	c := eff.Burst
	if r.Limit != eff {
		t.Errorf("%s: Limit = %+v, want %+v (the limit with Burst set to the capacity)", what, r.Limit, eff)
	}
	if r.Remaining < 0 || r.Remaining > c {
		t.Errorf("%s: Remaining = %d, want within [0, %d]", what, r.Remaining, c)
	}
	if r.Allowed {
		if r.RetryAfter != 0 {
			t.Errorf("%s: allowed with RetryAfter = %v, want 0", what, r.RetryAfter)
		}
	} else {
		switch {
		case n == 0 && r.Remaining != 0:
			t.Errorf("%s: denied with Remaining = %d, want a peek allowed unless nothing remains", what, r.Remaining)
		case n > 0 && n <= r.Remaining:
			t.Errorf("%s: denied with Remaining = %d, want allowed since %d ≤ Remaining", what, r.Remaining, n)
		case n == 0 && !changed:
			t.Errorf("%s: denied, want a peek allowed on a key charged under the same limit", what)
		}
		bound := addSat(maxRetry(alg, l, n), s.tol)
		if changed {
			bound = math.MaxInt64
		}
		if r.RetryAfter <= 0 || r.RetryAfter > bound {
			t.Errorf("%s: denied with RetryAfter = %v, want within (0, %v]", what, r.RetryAfter, bound)
		}
	}
	bound := addSat(maxReset(alg, l), s.tol)
	if changed {
		bound = math.MaxInt64
	}
	if r.ResetAfter < 0 || r.ResetAfter > bound {
		t.Errorf("%s: ResetAfter = %v, want within [0, %v]", what, r.ResetAfter, bound)
	}
	if full := r.Remaining == c; full != (r.ResetAfter == 0) {
		t.Errorf("%s: Remaining = %d of %d with ResetAfter = %v, want ResetAfter 0 exactly when the key is at full capacity", what, r.Remaining, c, r.ResetAfter)
	}
}

// probe makes calls for one key under one algorithm and limit, numbers them, and checks
// every Result with check.
type probe struct {
	t       reporter
	s       *suite
	store   ratelimit.Store
	key     string
	alg     ratelimit.Algorithm
	limit   ratelimit.Limit
	changed bool // the limit was changed since the key was first charged
	step    int
	warm    bool // the store has been asked about the key, under a clock that watches the schedule
}

// setLimit changes the limit of the calls that follow.
func (p *probe) setLimit(l ratelimit.Limit) {
	p.changed = p.changed || l != p.limit
	p.limit = l
}

func (s *suite) probe(t reporter, st ratelimit.Store, key string, alg ratelimit.Algorithm, l ratelimit.Limit) *probe {
	return &probe{t: t, s: s, store: st, key: key, alg: alg, limit: l}
}

// call describes the next call for failure messages.
func (p *probe) call(n int) string {
	return fmt.Sprintf("%v step %d: Take(%s, %d) at %v", p.alg, p.step, quoteKey(p.key), n, p.limit)
}

// take calls Take and checks the invariants. An error is fatal.
func (p *probe) take(n int) ratelimit.Result {
	p.t.Helper()
	if p.s.clock != nil && !p.warm {
		// The first call for a key may dial a server or load a script: make it before the
		// schedule starts, as a peek, which changes nothing.
		p.warm = true
		if _, err := p.store.Take(context.Background(), p.key, p.alg, p.limit, 0); err != nil {
			p.t.Fatalf("%s: warm-up peek: error %v, want none", p.call(0), errText(err))
		}
	}
	p.step++
	start := time.Now()
	r, err := p.store.Take(context.Background(), p.key, p.alg, p.limit, n)
	if a := p.s.clock; a != nil {
		a.observe(start, time.Now())
	}
	if err != nil {
		p.t.Fatalf("%s: error %v, want none", p.call(n), errText(err))
	}
	p.s.check(p.t, p.call(n), p.alg, p.limit, p.changed, n, r)
	return r
}

// expect takes n and checks the decision and Remaining.
func (p *probe) expect(n int, allowed bool, remaining int) ratelimit.Result {
	p.t.Helper()
	r := p.take(n)
	if r.Allowed != allowed || r.Remaining != remaining {
		p.t.Errorf("%s = %s, want %s", p.call(n), outcome(r.Allowed, r.Remaining), outcome(allowed, remaining))
	}
	return r
}

// drain takes one unit at a time until the first denial, at most limit+1 times, and
// returns how many passed.
func (p *probe) drain(limit int) int {
	p.t.Helper()
	for i := range limit + 1 {
		if !p.take(1).Allowed {
			return i
		}
	}
	return limit + 1
}

func outcome(allowed bool, remaining int) string {
	if allowed {
		return fmt.Sprintf("allowed with %d remaining", remaining)
	}
	return fmt.Sprintf("denied with %d remaining", remaining)
}

func itoa(n int) string { return strconv.Itoa(n) }

// errText returns err for messages, shortened: errors may quote keys of 64 KiB.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// quoteKey quotes key for messages, shortening long ones.
func quoteKey(key string) string {
	if len(key) > 40 {
		return strconv.Quote(key[:16]) + "…(" + strconv.Itoa(len(key)) + " bytes)"
	}
	return strconv.Quote(key)
}
