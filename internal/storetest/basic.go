package storetest

import (
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// countLimits are the limits of the tests of counts: Burst unset, below Rate, above Rate.
var countLimits = []ratelimit.Limit{
	{Rate: 5, Period: countPeriod},
	{Rate: 5, Period: countPeriod, Burst: 3},
	{Rate: 2, Period: countPeriod, Burst: 5},
}

// testFresh checks that a fresh key lets its capacity pass one unit at a time, counting
// Remaining down, and denies the next unit.
func (s *suite) testFresh(t *testing.T) {
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			for _, l := range countLimits {
				s.room(countPeriod, countRoom)
				p := s.probe(t, st, "fresh "+l.String(), alg, l)
				c := capacity(alg, l)
				p.expect(0, true, c)
				for i := range c {
					p.expect(1, true, c-1-i)
				}
				p.expect(1, false, 0)
				p.expect(0, true, 0)
			}
		})
	}
}

// testDenial checks that a denial is a Result, not an error, and changes nothing: not
// Remaining, not ResetAfter, not the RetryAfter of the next denial.
func (s *suite) testDenial(t *testing.T) {
	l := ratelimit.Limit{Rate: 5, Period: countPeriod}
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			s.room(countPeriod, countRoom)
			p := s.probe(t, st, "k", alg, l)
			p.expect(4, true, 1)
			d1 := p.expect(2, false, 1)
			d2 := p.expect(2, false, 1)
			s.noLater(t, p.call(2)+" RetryAfter", d2.RetryAfter, d1.RetryAfter)
			peek := p.expect(0, true, 1)
			s.noLater(t, p.call(0)+" ResetAfter", peek.ResetAfter, d1.ResetAfter)
			p.expect(1, true, 0)
			d3 := p.expect(1, false, 0)
			d4 := p.expect(1, false, 0)
			s.noLater(t, p.call(1)+" RetryAfter", d4.RetryAfter, d3.RetryAfter)
			p.expect(3, false, 0)
			p.expect(0, true, 0)
		})
	}
}

// noLater checks a duration read again after no state change: equal under synctest, no
// later with a real clock, where time has passed.
func (s *suite) noLater(t *testing.T, what string, got, before time.Duration) {
	t.Helper()
	if s.h.Synctest && got != before || got > before+s.tol {
		t.Errorf("%s = %v, want %v as before, since nothing changed", what, got, before)
	}
}

// testPeek checks that n == 0 reports without consuming.
func (s *suite) testPeek(t *testing.T) {
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			for _, l := range countLimits {
				s.room(countPeriod, countRoom)
				p := s.probe(t, st, "peek "+l.String(), alg, l)
				c := capacity(alg, l)
				for range 3 {
					if r := p.expect(0, true, c); r.ResetAfter != 0 {
						t.Errorf("%s: ResetAfter = %v on a fresh key, want 0", p.call(0), r.ResetAfter)
					}
				}
				p.expect(2, true, c-2)
				for range 3 {
					if r := p.expect(0, true, c-2); r.ResetAfter <= 0 {
						t.Errorf("%s: ResetAfter = %v with units in use, want > 0", p.call(0), r.ResetAfter)
					}
				}
				p.expect(c-2, true, 0)
				p.expect(1, false, 0)
			}
		})
	}
}

// testCost checks calls taking more than one unit.
func (s *suite) testCost(t *testing.T) {
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			s.room(countPeriod, countRoom)
			l := ratelimit.Limit{Rate: 5, Period: countPeriod}
			p := s.probe(t, st, "k", alg, l)
			p.expect(2, true, 3)
			p.expect(2, true, 1)
			p.expect(2, false, 1) // a denied n = 2 with 1 left reports 1
			p.expect(1, true, 0)
			p.expect(5, false, 0)

			for _, l := range countLimits {
				c := capacity(alg, l)
				p := s.probe(t, st, "all at once "+l.String(), alg, l)
				p.expect(c, true, 0)
				p.expect(1, false, 0)
			}
		})
	}
}
