package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// passesAfter checks that n passes once wait has passed and, under synctest, not 1 ns
// before: wait is a RetryAfter, the minimal wait.
func (s *suite) passesAfter(p *probe, n int, wait time.Duration) {
	p.t.Helper()
	if s.h.Synctest {
		sleepExact(wait - 1)
		if r := p.take(n); r.Allowed {
			p.t.Errorf("%s = allowed 1ns before the RetryAfter %v, want denied: RetryAfter is the minimal wait", p.call(n), wait)
		}
		sleepExact(1)
	} else {
		s.sleep(wait)
	}
	if r := p.take(n); !r.Allowed {
		p.t.Errorf("%s = denied after waiting the RetryAfter %v, want allowed", p.call(n), wait)
	}
}

// fullAfter checks that the key is back to full capacity once wait has passed and, under
// synctest, not 1 ns before: wait is a ResetAfter.
func (s *suite) fullAfter(p *probe, wait time.Duration) {
	p.t.Helper()
	c := capacity(p.alg, p.limit)
	if s.h.Synctest {
		sleepExact(wait - 1)
		if r := p.take(0); r.Remaining == c || r.ResetAfter != 1 {
			p.t.Errorf("%s = %s, ResetAfter %v, 1ns before the ResetAfter %v; want fewer than %d remaining, ResetAfter 1ns",
				p.call(0), outcome(r.Allowed, r.Remaining), r.ResetAfter, wait, c)
		}
		sleepExact(1)
	} else {
		s.sleep(wait)
	}
	if r := p.expect(0, true, c); r.ResetAfter != 0 {
		p.t.Errorf("%s: ResetAfter = %v after waiting the ResetAfter %v, want 0", p.call(0), r.ResetAfter, wait)
	}
	p.expect(c, true, 0)
}

// testRetryAfter checks that waiting RetryAfter after a denial is enough for the same
// request, and under synctest that it is the least wait that is.
func (s *suite) testRetryAfter(t *testing.T) {
	for _, alg := range algorithms {
		s.runTimed(t, alg.String(), func(s *suite, t reporter, st ratelimit.Store) {
			l := ratelimit.Limit{Rate: 3, Period: s.period} // T = Period/3: not whole nanoseconds under synctest
			for _, n := range []int{1, 2} {
				s.room(l.Period, l.Period/4)
				p := s.probe(t, st, fmt.Sprintf("n=%d", n), alg, l)
				p.expect(0, true, 3)
				if r := p.expect(3-n+1, true, n-1); r.RetryAfter != 0 {
					t.Errorf("%s: RetryAfter = %v, want 0 when allowed", p.call(3-n+1), r.RetryAfter)
				}
				r := p.expect(n, false, n-1)
				s.passesAfter(p, n, r.RetryAfter)
			}
		})
	}
}

// testResetAfter checks ResetAfter: 0 on a fresh key, exact after a consumption under
// synctest, and that waiting it out brings the key back to full capacity.
func (s *suite) testResetAfter(t *testing.T) {
	for _, alg := range algorithms {
		s.runTimed(t, alg.String(), func(s *suite, t reporter, st ratelimit.Store) {
			l := ratelimit.Limit{Rate: 3, Period: s.period}
			s.room(l.Period, l.Period/4)
			p := s.probe(t, st, "k", alg, l)
			if r := p.expect(0, true, 3); r.ResetAfter != 0 {
				t.Errorf("%s: ResetAfter = %v on a fresh key, want 0", p.call(0), r.ResetAfter)
			}
			var want time.Duration // exact under synctest, a bound otherwise
			switch ub := untilBoundary(l.Period); alg {
			case ratelimit.FixedWindow:
				want = ub
			case ratelimit.SlidingWindowLog:
				want = l.Period
			case ratelimit.SlidingWindowCounter:
				want = ub + l.Period
			default:
				want = interval(l, 2)
			}
			r := p.expect(2, true, 1)
			if s.h.Synctest && r.ResetAfter != want || r.ResetAfter <= 0 || r.ResetAfter > want+s.tol {
				t.Errorf("%s: ResetAfter = %v, want %v", p.call(2), r.ResetAfter, want)
			}
			if s.h.Synctest {
				// ResetAfter counts down with the clock.
				half := r.ResetAfter / 2
				sleepExact(half)
				if got := p.take(0).ResetAfter; got != r.ResetAfter-half {
					t.Errorf("%s: ResetAfter = %v %v after a ResetAfter of %v, want %v", p.call(0), got, half, r.ResetAfter, r.ResetAfter-half)
				}
				r.ResetAfter -= half
			}
			s.fullAfter(p, r.ResetAfter)
		})
	}
}

// testRollover checks that windows are aligned to the Unix epoch, not to a key's first
// call: FixedWindow starts over at the boundary; SlidingWindowCounter's reset is one
// Period after it.
func (s *suite) testRollover(t *testing.T) {
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowCounter} {
		s.runTimed(t, alg.String(), func(s *suite, t reporter, st ratelimit.Store) {
			l := ratelimit.Limit{Rate: 3, Period: s.period}
			if s.h.Synctest {
				sleepExact(l.Period / 3) // the clock starts at a boundary: leave it
			} else {
				s.room(l.Period, l.Period/2)
			}
			p := s.probe(t, st, "k", alg, l)
			ub := untilBoundary(l.Period)
			var wantReset time.Duration
			if alg == ratelimit.FixedWindow {
				wantReset = ub
			} else {
				wantReset = ub + l.Period
			}
			r := p.expect(3, true, 0)
			if s.h.Synctest && r.ResetAfter != wantReset || r.ResetAfter > wantReset+s.tol {
				t.Errorf("%s: ResetAfter = %v %v before an epoch-aligned boundary, want %v", p.call(3), r.ResetAfter, ub, wantReset)
			}
			r = p.expect(1, false, 0)
			if alg == ratelimit.FixedWindow {
				if s.h.Synctest && r.RetryAfter != ub || r.RetryAfter > ub+s.tol {
					t.Errorf("%s: RetryAfter = %v %v before an epoch-aligned boundary, want %v", p.call(1), r.RetryAfter, ub, ub)
				}
				s.passesAfter(p, 3, untilBoundary(l.Period))
				p.expect(1, false, 0)
				return
			}
			s.passesAfter(p, 1, r.RetryAfter)
		})
	}
}

// testBoundaryBurst checks the famous boundary burst: Rate units just before a boundary and
// Rate just after all pass with FixedWindow, and with no other algorithm.
func (s *suite) testBoundaryBurst(t *testing.T) {
	s.runTimed(t, "all", func(s *suite, t reporter, st ratelimit.Store) {
		period := s.scale * time.Second
		margin := period / 10
		l := ratelimit.Limit{Rate: 2, Period: period}
		if d := untilBoundary(period); d > margin+s.slack {
			s.align(d - margin)
		} else {
			s.align(d + period - margin)
		}
		probes := make([]*probe, len(algorithms))
		for i, alg := range algorithms {
			probes[i] = s.probe(t, st, "k", alg, l)
			probes[i].expect(1, true, 1)
			probes[i].expect(1, true, 0)
		}
		s.align(untilBoundary(period) + margin)
		for _, p := range probes {
			want := 0
			if p.alg == ratelimit.FixedWindow {
				want = l.Rate
			}
			got := 0
			for range l.Rate {
				if p.take(1).Allowed {
					got++
				}
			}
			if got != want {
				t.Errorf("%v: %d units passed %v after a boundary, after %d passed %v before it; want %d to pass",
					p.alg, got, margin, l.Rate, margin, want)
			}
		}
	})
}

// testBurstAfterIdle checks that after an idle spell a key lets exactly its capacity pass
// at once: Burst for the buckets, never more.
func (s *suite) testBurstAfterIdle(t *testing.T) {
	s.runTimed(t, "all", func(s *suite, t reporter, st ratelimit.Store) {
		l := ratelimit.Limit{Rate: 4, Period: s.period, Burst: 2}
		s.room(l.Period, l.Period/4)
		probes := make([]*probe, len(algorithms))
		for i, alg := range algorithms {
			probes[i] = s.probe(t, st, "k", alg, l)
			if got, want := probes[i].drain(capacity(alg, l)), capacity(alg, l); got != want {
				t.Errorf("%v: %d units passed one at a time on a fresh key, want %d", alg, got, want)
			}
		}
		for _, idle := range []time.Duration{2 * l.Period, 10 * l.Period} {
			s.sleep(idle)
			s.room(l.Period, l.Period/4)
			for _, p := range probes {
				c := capacity(p.alg, l)
				p.expect(0, true, c)
				if got := p.drain(c); got != c {
					t.Errorf("%v: %d units passed one at a time after %v idle, want %d", p.alg, got, idle, c)
				}
			}
			if !s.h.Synctest {
				break // the short idle is enough with a real clock
			}
		}
	})
}

// testRefill checks that the buckets regain units at Rate per Period.
func (s *suite) testRefill(t *testing.T) {
	for _, alg := range buckets {
		s.runTimed(t, alg.String(), func(s *suite, t reporter, st ratelimit.Store) {
			l := ratelimit.Limit{Rate: 4, Period: s.period}
			T := interval(l, 1)
			p := s.probe(t, st, "k", alg, l)
			p.expect(4, true, 0)
			p.expect(1, false, 0)
			if s.h.Synctest {
				sleepExact(T - 1)
				p.expect(0, true, 0)
				sleepExact(1)
			} else {
				s.sleep(T)
			}
			p.expect(0, true, 1)
			p.expect(1, true, 0)
			p.expect(1, false, 0)
			s.sleep(2 * T)
			p.expect(0, true, 2)
			p.expect(1, true, 1)
			p.expect(1, true, 0)
			p.expect(1, false, 0)
			s.sleep(l.Period) // a Period regains Rate units, here the whole capacity
			p.expect(0, true, 4)
			p.expect(4, true, 0)
		})
	}
}

// testLongIdle checks that state outlives long idle spells, whatever housekeeping the
// store does meanwhile, until the key is back to full capacity, and not a moment longer.
// Keys are taken about a tenth of a second apart for two minutes, with periods a
// millisecond apart, so that whatever the store's housekeeping period and rounding, some
// keys come back to full capacity just after a round of it.
func (s *suite) testLongIdle(t *testing.T) {
	s.synctestOnly(t)
	const keys = 1200
	const early = 50 * time.Millisecond
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			type check struct {
				at   time.Time
				p    *probe
				full bool
			}
			var pending []check
			// runChecks makes the pending checks due by until, each at its instant.
			runChecks := func(until time.Time) {
				sort.Slice(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
				for len(pending) > 0 && !pending[0].at.After(until) {
					c := pending[0]
					pending = pending[1:]
					sleepExact(time.Until(c.at))
					if r := c.p.take(0); (r.Remaining == 2) != c.full {
						when := "at"
						if !c.full {
							when = early.String() + " before"
						}
						t.Errorf("%s = %s %s the instant ResetAfter announced; want the key full from then on, not before",
							c.p.call(0), outcome(r.Allowed, r.Remaining), when)
					}
				}
			}
			var probes []*probe
			next := time.Now().Add(37 * time.Second) // keep windows away from the store's creation
			for i := range keys {
				runChecks(next)
				sleepExact(time.Until(next))
				next = next.Add(97 * time.Millisecond)
				// Periods differ so that the windows' boundaries do too.
				l := ratelimit.Limit{Rate: 2, Period: 180*time.Second + time.Duration(i)*time.Millisecond}
				p := s.probe(t, st, fmt.Sprintf("k%d", i), alg, l)
				probes = append(probes, p)
				r := p.expect(2, true, 0)
				reset := time.Now().Add(r.ResetAfter)
				if r.ResetAfter > early {
					pending = append(pending, check{reset.Add(-early), p, false})
				}
				pending = append(pending, check{reset, p, true})
			}
			runChecks(time.Now().Add(time.Hour))
			sleepExact(5 * time.Hour)
			for _, p := range probes {
				if got := p.drain(2); got != 2 {
					t.Errorf("%v: %d units passed one at a time after 5h idle, want 2", alg, got)
				}
			}
		})
	}
}

// traceStep is one call of a trace at an instant after an aligned origin, with the Result
// it must return.
type traceStep struct {
	at        time.Duration
	n         int
	allowed   bool
	remaining int
	retry     time.Duration
	reset     time.Duration
}

type trace struct {
	name  string
	algs  []ratelimit.Algorithm
	limit ratelimit.Limit
	steps []traceStep
}

const ms = time.Millisecond

// traces pin the exact Results of each algorithm, worked out from the formulas of the
// contract. Their origin is aligned to every Period they use.
var traces = []trace{
	{"fixed", []ratelimit.Algorithm{ratelimit.FixedWindow}, ratelimit.Limit{Rate: 4, Period: time.Second}, []traceStep{
		{250 * ms, 1, true, 3, 0, 750 * ms},
		{250 * ms, 3, true, 0, 0, 750 * ms},
		{600 * ms, 1, false, 0, 400 * ms, 400 * ms},
		{600 * ms, 0, true, 0, 0, 400 * ms},
		{1000 * ms, 0, true, 4, 0, 0}, // a new window
		{1000 * ms, 4, true, 0, 0, time.Second},
		{2999 * ms, 2, true, 2, 0, 1 * ms},
	}},
	{"log", []ratelimit.Algorithm{ratelimit.SlidingWindowLog}, ratelimit.Limit{Rate: 3, Period: time.Second}, []traceStep{
		{0, 1, true, 2, 0, time.Second},
		{200 * ms, 1, true, 1, 0, time.Second},
		{700 * ms, 1, true, 0, 0, time.Second},
		{900 * ms, 2, false, 0, 300 * ms, 800 * ms}, // two units must leave: the second at 1.2s
		{1000 * ms, 1, true, 0, 0, time.Second},     // the unit of 0s is out of (0s, 1s]
		{1200 * ms, 1, true, 0, 0, time.Second},
		{1200 * ms, 2, false, 0, 800 * ms, time.Second},
		{5000 * ms, 0, true, 3, 0, 0},
	}},
	{"counter", []ratelimit.Algorithm{ratelimit.SlidingWindowCounter}, ratelimit.Limit{Rate: 4, Period: time.Second}, []traceStep{
		{0, 3, true, 1, 0, 2 * time.Second},
		// Passes in the next window once 3·(1 − e) + 2 ≤ 4: at e = ⅓s, rounded up.
		{500 * ms, 2, false, 1, 833_333_334, 1500 * ms},
		{1250 * ms, 0, true, 1, 0, 750 * ms}, // estimate 3·0.75 = 2.25
		{1250 * ms, 1, true, 0, 0, 1750 * ms},
		{1250 * ms, 1, false, 0, 83_333_334, 1750 * ms},
		{1500 * ms, 1, true, 0, 0, 1500 * ms}, // estimate 1.5 + 1 + 1
		{3500 * ms, 0, true, 4, 0, 0},
	}},
	{"counter at 1/s", []ratelimit.Algorithm{ratelimit.SlidingWindowCounter}, ratelimit.Limit{Rate: 1, Period: time.Second}, []traceStep{
		// The price of the approximation: after a unit at 0s, the next passes at 2s.
		{0, 1, true, 0, 0, 2 * time.Second},
		{0, 1, false, 0, 2 * time.Second, 2 * time.Second},
		{2*time.Second - 1, 1, false, 0, 1, 1},
		{2 * time.Second, 1, true, 0, 0, 2 * time.Second},
	}},
	{"buckets", buckets, ratelimit.Limit{Rate: 3, Period: time.Second, Burst: 2}, []traceStep{
		// T = 333,333,333⅓ns, never rounded; durations are rounded up.
		{0, 2, true, 0, 0, 666_666_667},
		{0, 1, false, 0, 333_333_334, 666_666_667},
		{100 * ms, 0, true, 0, 0, 566_666_667},
		{333_333_334, 1, true, 0, 0, 666_666_666},
		{10 * time.Second, 1, true, 1, 0, 333_333_334},
		{10 * time.Second, 1, true, 0, 0, 666_666_667},
		{10 * time.Second, 1, false, 0, 333_333_334, 666_666_667},
	}},
}

// testTrace runs the traces, checking every field of every Result to the nanosecond.
func (s *suite) testTrace(t *testing.T) {
	s.synctestOnly(t)
	for _, tr := range traces {
		for _, alg := range tr.algs {
			s.run(t, tr.name+"/"+alg.String(), func(t *testing.T, st ratelimit.Store) {
				if d := untilBoundary(time.Hour); d != time.Hour {
					sleepExact(d)
				}
				origin := time.Now()
				p := s.probe(t, st, "k", alg, tr.limit)
				for _, step := range tr.steps {
					sleepExact(time.Until(origin.Add(step.at)))
					r := p.take(step.n)
					want := ratelimit.Result{Allowed: step.allowed, Limit: effective(alg, tr.limit), Remaining: step.remaining, RetryAfter: step.retry, ResetAfter: step.reset}
					if r != want {
						t.Errorf("step %d: Take(k, %d) at %v = %+v, want %+v", p.step, step.n, step.at, r, want)
					}
				}
			})
		}
	}
}
