package algo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// TestGCRAWholeMatchesExact checks that the whole-nanosecond path of GCRA decides, reports
// and writes exactly what the unit·nanosecond path does, on random limits whose Rate
// divides the Period, random backlogs (up to past a lowered limit) and costs.
func TestGCRAWholeMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	intervals := []int64{1, 2, 7, 1000, 1_000_000, 60_000_000_000}
	const now = int64(1_780_000_000_000_000_000)
	for i := range 200_000 {
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
		p, err := NewParams(ratelimit.GCRA, l)
		if err != nil {
			continue
		}
		if p.T == 0 {
			t.Fatalf("%v: T = 0, want %d", l, p.Period/p.Rate)
		}
		full := int64(p.Cap * p.T)
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
		s := State{At: now + ahead}
		n := uint64(rng.Int64N(int64(p.Cap) + 1))
		s1, s2 := s, s
		var d1, d2 Decision
		gcraWhole(&s1, now, &p, n, &d1)
		gcraExact(&s2, now, &p, n, &d2)
		if s1 != s2 || d1 != d2 {
			t.Fatalf("case %d: %v, TAT now%+d, n %d: whole path = %+v %+v, exact path = %+v %+v", i, l, ahead, n, s1, d1, s2, d2)
		}
	}
}
