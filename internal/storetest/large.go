package storetest

import (
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// testLargeLimits checks large limits, where arithmetic in 64 bits, or in floating point,
// loses units or overflows: billions of units, periods of decades, a refill of a century.
// Each unit takes at least 100ms to come back, so that a real clock does not blur counts.
func (s *suite) testLargeLimits(t *testing.T) {
	const year = 365 * 24 * time.Hour
	limits := []ratelimit.Limit{
		{Rate: 1_000_000_000, Period: 10 * year},
		{Rate: 1 << 30, Period: 10 * year},
		{Rate: 1, Period: 30 * year},
		{Rate: 7, Period: 30*year + 3*time.Microsecond},
		{Rate: 1, Period: 3 * time.Second, Burst: 1_000_000_000}, // 95 years to refill
	}
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			for _, l := range limits {
				if l.Burst > 0 && !isBucket(alg) {
					continue
				}
				c := capacity(alg, l)
				if !isBucket(alg) {
					s.room(l.Period, countRoom)
				}
				p := s.probe(t, st, "k "+l.String(), alg, l)
				p.expect(0, true, c)
				if c > 1 {
					p.expect(c-1, true, 1)
					p.expect(2, false, 1)
				}
				var want time.Duration // ResetAfter, exact under synctest, a bound otherwise
				switch ub := untilBoundary(l.Period); alg {
				case ratelimit.FixedWindow:
					want = ub
				case ratelimit.SlidingWindowLog:
					want = l.Period
				case ratelimit.SlidingWindowCounter:
					want = ub + l.Period
				default:
					want = interval(l, c)
				}
				r := p.expect(1, true, 0)
				if s.h.Synctest && r.ResetAfter != want || r.ResetAfter > addSat(want, s.tol) {
					t.Errorf("%s: ResetAfter = %v, want %v", p.call(1), r.ResetAfter, want)
				}
				r = p.expect(1, false, 0)
				if isBucket(alg) && (s.h.Synctest && r.RetryAfter != interval(l, 1) || r.RetryAfter > interval(l, 1)+s.tol) {
					t.Errorf("%s: RetryAfter = %v, want %v", p.call(1), r.RetryAfter, interval(l, 1))
				}
			}
		})
	}
}
