package algo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// TestWholeMatchesExact checks that the whole-nanosecond paths of the bucket algorithms
// decide, report and write exactly what the unit·nanosecond arithmetic does, on random
// limits whose Rate divides the Period, random states (up to past a lowered limit, with
// fractions that are and are not whole nanoseconds) and costs.
func TestWholeMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	intervals := []int64{1, 2, 7, 1000, 1_000_000, 60_000_000_000}
	const now = int64(1_780_000_000_000_000_000)
	for i := range 300_000 {
		alg := []ratelimit.Algorithm{ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA}[i%3]
		T := intervals[rng.IntN(len(intervals))]
		if rng.IntN(2) == 0 {
			T = 1 + rng.Int64N(1_000_000_000)
		}
		rate := 1 + rng.IntN(100)
		if rng.IntN(2) == 0 {
			rate = 1 + rng.IntN(1_000_000)
		}
		period := time.Duration(int64(rate) * T)
		l := ratelimit.Limit{Rate: rate, Period: period, Burst: rng.IntN(3) * rng.IntN(2*rate+1)}
		p, err := NewParams(alg, l)
		if err != nil {
			continue
		}
		if p.T != uint64(T) {
			t.Fatalf("%v %v: T = %d, want %d", alg, l, p.T, T)
		}
		exact := p
		exact.T = 0
		full := int64(p.Cap * p.T)
		var s State
		switch alg {
		case ratelimit.GCRA:
			var ahead int64
			switch rng.IntN(4) {
			case 0:
				ahead = -rng.Int64N(full + 1)
			case 1:
				ahead = rng.Int64N(full + 1)
			case 2:
				ahead = full - rng.Int64N(int64(p.T)+1)
			default:
				ahead = full + rng.Int64N(full+1) // over a lowered limit
			}
			s = State{At: now + ahead}
		default:
			s = State{At: now - rng.Int64N(full+1), X: uint64(rng.Int64N(int64(p.Cap) + 2))}
			if rng.IntN(3) == 0 {
				s.At = now + rng.Int64N(int64(p.T)+1) // an update stamped after now
			}
			switch rng.IntN(3) {
			case 0:
				s.Y = uint64(rng.Int64N(T)) * p.Rate // a whole number of nanoseconds
			case 1:
				s.Y = uint64(rng.Int64N(int64(p.Period))) // any fraction
			}
		}
		n := uint64(rng.Int64N(int64(p.Cap) + 1))
		s1, s2 := s, s
		var d1, d2 Decision
		Step(alg, &s1, now, &p, n, &d1)
		Step(alg, &s2, now, &exact, n, &d2)
		if s1 != s2 || d1 != d2 {
			t.Fatalf("case %d: %v %v, state %+v (now %d), n %d: whole path = %+v %+v, exact path = %+v %+v", i, alg, l, s, now, n, s1, d1, s2, d2)
		}
	}
}
