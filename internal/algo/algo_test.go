package algo

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// step is one call at an explicit instant and what it must return.
type step struct {
	at      time.Duration // since the test's origin
	n       uint64
	allowed bool
	remain  uint64
	retry   time.Duration
	reset   time.Duration
}

// origin is an epoch-aligned instant, so windows of 1s, 1m and 1h all start there.
const origin = 472_222 * int64(time.Hour) // 2023-11-14T22:00:00Z

// runner runs one algorithm over a sequence of steps.
type runner interface {
	take(now int64, n uint64) Decision
}

type fixedState struct {
	alg ratelimit.Algorithm
	p   Params
	s   State
}

func (f *fixedState) take(now int64, n uint64) Decision {
	var d Decision
	f.s, d = Take(f.alg, f.s, now, f.p, n)
	return d
}

type logState struct {
	p   Params
	log Log
}

func (l *logState) take(now int64, n uint64) Decision { return l.log.Take(now, l.p, n) }

func newRunner(t *testing.T, alg ratelimit.Algorithm, l ratelimit.Limit) runner {
	t.Helper()
	p, err := NewParams(alg, l)
	if err != nil {
		t.Fatal(err)
	}
	if alg == ratelimit.SlidingWindowLog {
		return &logState{p: p}
	}
	return &fixedState{alg: alg, p: p, s: Init(alg, p, origin)}
}

func runSteps(t *testing.T, alg ratelimit.Algorithm, l ratelimit.Limit, steps []step) {
	t.Helper()
	r := newRunner(t, alg, l)
	for i, s := range steps {
		d := r.take(origin+int64(s.at), s.n)
		got := fmt.Sprintf("allowed=%v remaining=%d retry=%v reset=%v", d.Allowed, d.Remaining, time.Duration(d.RetryAfter), time.Duration(d.ResetAfter))
		want := fmt.Sprintf("allowed=%v remaining=%d retry=%v reset=%v", s.allowed, s.remain, s.retry, s.reset)
		if got != want {
			t.Errorf("%v step %d: Take(t0+%v, %d) = %s, want %s", alg, i, s.at, s.n, got, want)
		}
	}
}

const ms = time.Millisecond

func TestFixedWindow(t *testing.T) {
	runSteps(t, ratelimit.FixedWindow, ratelimit.PerSecond(3), []step{
		{0, 1, true, 2, 0, time.Second},
		{100 * ms, 2, true, 0, 0, 900 * ms},
		{200 * ms, 1, false, 0, 800 * ms, 800 * ms},
		{300 * ms, 0, true, 0, 0, 700 * ms}, // a peek at a full window is allowed
		{999 * ms, 1, false, 0, 1 * ms, 1 * ms},
		{1000 * ms, 3, true, 0, 0, time.Second}, // a new window
		{2500 * ms, 0, true, 3, 0, 0},
		{2500 * ms, 4 - 1, true, 0, 0, 500 * ms},
	})
}

func TestFixedWindowOutOfOrder(t *testing.T) {
	// A call stamped in an earlier window counts against the current one, as if made
	// at that window's start.
	runSteps(t, ratelimit.FixedWindow, ratelimit.PerSecond(2), []step{
		{1500 * ms, 1, true, 1, 0, 500 * ms},
		{900 * ms, 1, true, 0, 0, time.Second},
		{800 * ms, 1, false, 0, time.Second, time.Second},
	})
}

func TestSlidingWindowCounter(t *testing.T) {
	runSteps(t, ratelimit.SlidingWindowCounter, ratelimit.PerSecond(1), []step{
		{0, 1, true, 0, 0, 2 * time.Second},
		// The documented price of the approximation: the next unit passes at 2s, not 1s.
		{0, 1, false, 0, 2 * time.Second, 2 * time.Second},
		{1000 * ms, 1, false, 0, time.Second, time.Second},
		{1500 * ms, 1, false, 0, 500 * ms, 500 * ms},
		{2000 * ms, 1, true, 0, 0, 2 * time.Second},
	})
	runSteps(t, ratelimit.SlidingWindowCounter, ratelimit.PerSecond(10), []step{
		{0, 10, true, 0, 0, 2 * time.Second},
		// At 1.25s the previous window weighs 10·0.75 = 7.5: 2 units fit, not 3.
		{1250 * ms, 0, true, 2, 0, 750 * ms},
		{1250 * ms, 3, false, 2, 50 * ms, 750 * ms},
		{1300 * ms, 3, true, 0, 0, 1700 * ms},
		{1300 * ms, 1, false, 0, 100 * ms, 1700 * ms},
	})
}

func TestSlidingWindowLog(t *testing.T) {
	runSteps(t, ratelimit.SlidingWindowLog, ratelimit.PerSecond(3), []step{
		{0, 1, true, 2, 0, time.Second},
		{400 * ms, 2, true, 0, 0, 1000 * ms},
		{900 * ms, 1, false, 0, 100 * ms, 500 * ms},
		{1000 * ms, 1, true, 0, 0, 1000 * ms}, // the unit of t0 left the window (t0−1s, t0]
		{1000 * ms, 2, false, 0, 400 * ms, 1000 * ms},
		{1400 * ms, 2, true, 0, 0, 1000 * ms},
		{3000 * ms, 0, true, 3, 0, 0},
	})
}

func TestTokenBucket(t *testing.T) {
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}
	runSteps(t, ratelimit.TokenBucket, l, []step{
		{0, 3, true, 2, 0, 300 * ms}, // the example of ratelimit.Result's doc
		{0, 3, false, 2, 100 * ms, 300 * ms},
		{100 * ms, 3, true, 0, 0, 500 * ms},
		{150 * ms, 1, false, 0, 50 * ms, 450 * ms},
		{150 * ms, 0, true, 0, 0, 450 * ms},
		{10 * time.Second, 5, true, 0, 0, 500 * ms}, // burst after idle: full, never more
		{10 * time.Second, 1, false, 0, 100 * ms, 500 * ms},
	})
}

func TestTokenBucketFractionalInterval(t *testing.T) {
	// T = 1s/3 = 333,333,333⅓ ns is never rounded: the third unit of refill is due at exactly 1s.
	runSteps(t, ratelimit.TokenBucket, ratelimit.Limit{Rate: 3, Period: time.Second, Burst: 3}, []step{
		{0, 3, true, 0, 0, time.Second},
		{0, 1, false, 0, 333333334, time.Second},
		{333333333, 1, false, 0, 1, 666666667},
		{333333334, 0, true, 1, 0, 666666666},
		{1000000000, 3, true, 0, 0, time.Second},
	})
}

func TestLeakyBucket(t *testing.T) {
	// Burst 1 makes a shaper: one unit every T = 250ms.
	runSteps(t, ratelimit.LeakyBucket, ratelimit.Limit{Rate: 4, Period: time.Second, Burst: 1}, []step{
		{0, 1, true, 0, 0, 250 * ms},
		{100 * ms, 1, false, 0, 150 * ms, 150 * ms},
		{250 * ms, 1, true, 0, 0, 250 * ms},
		{500 * ms, 1, true, 0, 0, 250 * ms},
		{600 * ms, 0, true, 0, 0, 150 * ms},
		{2 * time.Second, 0, true, 1, 0, 0},
	})
}

func TestGCRA(t *testing.T) {
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}
	runSteps(t, ratelimit.GCRA, l, []step{
		{0, 3, true, 2, 0, 300 * ms},
		{0, 3, false, 2, 100 * ms, 300 * ms},
		{100 * ms, 3, true, 0, 0, 500 * ms},
		{150 * ms, 1, false, 0, 50 * ms, 450 * ms},
		{10 * time.Second, 5, true, 0, 0, 500 * ms},
	})
}

// TestBucketsAgree checks that TokenBucket, LeakyBucket and GCRA make the same decisions
// and report the same figures on one random trace.
func TestBucketsAgree(t *testing.T) {
	l := ratelimit.Limit{Rate: 7, Period: 3 * time.Second, Burst: 4}
	algs := []ratelimit.Algorithm{ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA}
	var rs []runner
	for _, a := range algs {
		rs = append(rs, newRunner(t, a, l))
	}
	now := origin
	x := uint64(12345)
	for i := range 20000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		now += int64(x % uint64(700*ms))
		n := x % 5
		want := rs[0].take(now, n)
		for j, r := range rs[1:] {
			if got := r.take(now, n); got != want {
				t.Fatalf("call %d: %v = %+v, %v = %+v", i, algs[j+1], got, algs[0], want)
			}
		}
	}
}

func TestCost(t *testing.T) {
	p, err := NewParams(ratelimit.TokenBucket, ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{-1, 6} {
		if _, err := p.Cost(n); err == nil {
			t.Errorf("Cost(%d) = nil error, want ErrInvalidCost", n)
		}
	}
	if c, err := p.Cost(5); err != nil || c != 5 {
		t.Errorf("Cost(5) = %d, %v, want 5, nil", c, err)
	}
}

// TestBoundaryBurst shows the fixed window's weakness: Rate units at the end of one window
// and Rate more at the start of the next, 2·Rate within a few milliseconds. The sliding
// algorithms refuse the second batch.
func TestBoundaryBurst(t *testing.T) {
	l := ratelimit.PerSecond(10)
	for _, tt := range []struct {
		alg    ratelimit.Algorithm
		second bool // whether the second batch passes
	}{
		{ratelimit.FixedWindow, true},
		{ratelimit.SlidingWindowLog, false},
		{ratelimit.SlidingWindowCounter, false},
	} {
		r := newRunner(t, tt.alg, l)
		if d := r.take(origin+int64(999*ms), 10); !d.Allowed {
			t.Fatalf("%v: first batch of 10 at 0.999s denied", tt.alg)
		}
		if d := r.take(origin+int64(1001*ms), 10); d.Allowed != tt.second {
			t.Errorf("%v: second batch of 10 at 1.001s allowed = %v, want %v", tt.alg, d.Allowed, tt.second)
		}
	}
}

// TestLimitChange runs one state under a limit and then under a lowered Burst.
func TestLimitChange(t *testing.T) {
	high := ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 10} // T = 6m
	low := ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 5}
	for _, tt := range []struct {
		alg  ratelimit.Algorithm
		peek string // the peek under the lowered Burst right after 8 were taken
		at30 string // a peek 30 minutes later
	}{
		// The token bucket keeps its 2 tokens, below the new capacity; full 18m later.
		{ratelimit.TokenBucket, "true 2 0s 18m0s", "true 5 0s 0s"},
		// The leaky bucket's level of 8 is clamped to 5: nothing left, empty 30m later.
		{ratelimit.LeakyBucket, "true 0 0s 30m0s", "true 5 0s 0s"},
		// GCRA keeps its TAT, 48m ahead: over the limit until 18m, full at 48m.
		{ratelimit.GCRA, "false 0 18m0s 48m0s", "true 2 0s 18m0s"},
	} {
		hp, _ := NewParams(tt.alg, high)
		lp, _ := NewParams(tt.alg, low)
		s := Init(tt.alg, hp, origin)
		s, _ = Take(tt.alg, s, origin, hp, 8)
		for _, c := range []struct {
			at   time.Duration
			want string
		}{{0, tt.peek}, {30 * time.Minute, tt.at30}} {
			_, d := Take(tt.alg, s, origin+int64(c.at), lp, 0)
			got := fmt.Sprintf("%v %d %v %v", d.Allowed, d.Remaining, time.Duration(d.RetryAfter), time.Duration(d.ResetAfter))
			if got != c.want {
				t.Errorf("%v: peek at +%v under the lowered Burst = %s, want %s", tt.alg, c.at, got, c.want)
			}
		}
	}
}
