package storetest

import (
	"testing"

	"github.com/go-ratelimit/ratelimit"
)

// testLimitChange checks a changed limit on existing state, as Limiter.SetLimit makes:
// the state is read under the new limit. A token bucket keeps its tokens and a leaky
// bucket its level, clamped to the new capacity; GCRA keeps its TAT, so a key deeper in
// debt than a lowered Burst allows denies, even n = 0, until it drains; window counts above
// a lowered Rate deny, even n = 0, until they age out.
func (s *suite) testLimitChange(t *testing.T) {
	wide := ratelimit.Limit{Rate: 10, Period: countPeriod, Burst: 10}
	narrow := ratelimit.Limit{Rate: 10, Period: countPeriod, Burst: 5}
	slow := ratelimit.Limit{Rate: 5, Period: countPeriod, Burst: 10}
	type peek struct {
		allowed   bool
		remaining int
	}
	for _, alg := range buckets {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			for _, c := range []struct {
				name     string
				from, to ratelimit.Limit
				take     int
				want     [3]peek // a peek under to: for TokenBucket, LeakyBucket, GCRA
			}{
				{"burst lowered above the tokens", wide, narrow, 2, [3]peek{{true, 5}, {true, 3}, {true, 3}}},
				{"burst lowered below the tokens", wide, narrow, 8, [3]peek{{true, 2}, {true, 0}, {false, 0}}},
				{"burst raised", narrow, wide, 4, [3]peek{{true, 1}, {true, 6}, {true, 6}}},
				{"rate lowered", wide, slow, 4, [3]peek{{true, 6}, {true, 6}, {true, 8}}},
			} {
				want := c.want[alg-ratelimit.TokenBucket]
				p := s.probe(t, st, c.name, alg, c.from)
				p.expect(c.take, true, capacity(alg, c.from)-c.take)
				p.setLimit(c.to)
				p.expect(0, want.allowed, want.remaining)
				p.expect(0, want.allowed, want.remaining)
				if want.remaining > 0 {
					p.expect(want.remaining, true, 0)
				}
				p.expect(1, false, 0)
				p.expect(0, want.allowed, 0)
			}
		})
	}

	// After a lowered Burst the durations announced hold: the same n passes after
	// RetryAfter, and the key is full after ResetAfter, not before.
	for _, alg := range buckets {
		s.runTimed(t, alg.String()+"/burst lowered then idle", func(s *suite, t reporter, st ratelimit.Store) {
			from := ratelimit.Limit{Rate: 4, Period: s.period, Burst: 4}
			to := ratelimit.Limit{Rate: 4, Period: s.period, Burst: 2}
			p := s.probe(t, st, "k", alg, from)
			p.expect(4, true, 0)
			p.setLimit(to)
			r := p.expect(0, alg != ratelimit.GCRA, 0)
			reset := r.ResetAfter
			if !r.Allowed {
				s.passesAfter(p, 0, r.RetryAfter)
				reset -= r.RetryAfter + s.slack
			}
			if !s.h.Synctest {
				half := reset / 2
				s.sleep(half)
				if got := p.take(0); got.Remaining == capacity(alg, to) {
					t.Errorf("%s = %s halfway to the ResetAfter %v, want the state kept", p.call(0), outcome(got.Allowed, got.Remaining), r.ResetAfter)
				}
				reset -= half + s.slack
			}
			s.fullAfter(p, reset)
		})
	}

	for _, alg := range windows {
		s.runTimed(t, alg.String(), func(s *suite, t reporter, st ratelimit.Store) {
			l := ratelimit.Limit{Rate: 10, Period: s.period}
			s.room(l.Period, l.Period/4)
			p := s.probe(t, st, "k", alg, l)
			p.expect(8, true, 2)
			p.setLimit(ratelimit.Limit{Rate: 20, Period: l.Period})
			p.expect(0, true, 12)
			p.setLimit(ratelimit.Limit{Rate: 5, Period: l.Period})
			r := p.expect(0, false, 0)
			p.expect(1, false, 0)
			p.expect(5, false, 0)
			p.setLimit(l)
			p.expect(0, true, 2)
			p.setLimit(ratelimit.Limit{Rate: 5, Period: l.Period})
			s.passesAfter(p, 0, r.RetryAfter)
		})
	}
}
