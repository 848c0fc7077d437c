package redisstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// reference runs internal/algo, the definition of the semantics, on one key.
type reference struct {
	alg ratelimit.Algorithm
	p   algo.Params
	s   algo.State
	log algo.Log
	new bool
}

func (r *reference) take(now int64, n uint64) algo.Decision {
	if r.alg == ratelimit.SlidingWindowLog {
		return r.log.Take(now, r.p, n)
	}
	s := r.s
	if r.new {
		// A key holds state only once something was taken, as in memorystore: until then
		// each call starts from the initial state at its own instant.
		s = algo.Init(r.alg, r.p, now)
	}
	s, d := algo.Take(r.alg, s, now, r.p, n)
	if d.Allowed && n > 0 {
		r.s, r.new = s, false
	}
	return d
}

// widest is the largest Rate the store accepts, or the largest int on 32-bit platforms.
var widest = int(min(uint64(maxRate), uint64(math.MaxInt)))

// diffLimits span the documented range: rates 1 to 10^9, periods 1µs to 365 days,
// bursts below, at and above the rate.
var diffLimits = []ratelimit.Limit{
	{Rate: 1, Period: time.Second},
	{Rate: 3, Period: time.Second},
	{Rate: 7, Period: 10 * time.Millisecond, Burst: 3},
	{Rate: 10, Period: time.Minute, Burst: 25},
	{Rate: 100, Period: time.Millisecond},
	{Rate: 1, Period: time.Millisecond},
	{Rate: 1000, Period: time.Hour, Burst: 1},
	{Rate: 999_983, Period: 1_234_567 * time.Microsecond, Burst: 17},
	{Rate: 1_000_000_000, Period: time.Second},
	{Rate: 1_000_000_000, Period: 365 * 24 * time.Hour},
	{Rate: 1, Period: 365 * 24 * time.Hour},
	{Rate: 3, Period: 365 * 24 * time.Hour, Burst: 1_000_000_000},
	{Rate: 1_000_000_000, Period: time.Millisecond, Burst: 7},
	{Rate: 999_999_937, Period: 24*time.Hour + 7*time.Microsecond, Burst: 1_000_000_000},
	{Rate: 5, Period: time.Microsecond},
	{Rate: widest, Period: (1 << 50) * time.Microsecond},
	{Rate: 1, Period: 1 << 50 * time.Microsecond / 4096, Burst: 1 << 12},
}

// TestDifferential runs random traces through the scripts, at simulated instants, and
// through internal/algo, and requires the same decisions to the nanosecond.
func TestDifferential(t *testing.T) {
	// Not parallel: it loads the machine (see conformance_test.go).
	s, _ := newStore(t, nil)
	testDifferential(t, s)
}

func testDifferential(t *testing.T, s *Store) {
	simulate(s)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const steps = 300
	for li, base := range diffLimits {
		for _, alg := range algorithms {
			l := base
			if l.Validate() != nil {
				continue
			}
			p, err := algo.NewParams(alg, l)
			if err != nil {
				t.Fatal(err)
			}
			if alg == ratelimit.SlidingWindowLog && p.Rate > 1_000_000 && p.Period > uint64(time.Second) {
				// The log keeps one entry per distinct microsecond: keep the trace's state small.
				continue
			}
			key := fmt.Sprintf("diff-%d-%v", li, alg)
			ref := &reference{alg: alg, p: p, new: true}
			// An instant in 2025 or 2026, in microseconds.
			now := int64(1_735_689_600_000_000) + rng.Int64N(365*24*3600*1_000_000)
			var trace []string
			tu := max(int64(p.Period/p.Rate/1000), 1) // the first emission interval, µs
			for i := 0; i < steps; i++ {
				switch k := rng.IntN(20); {
				case k < 2:
					// same instant
				case k < 3:
					now -= rng.Int64N(3*tu + 1) // out of order
				case k < 12:
					now += rng.Int64N(2*tu + 1)
				case k < 17:
					now += rng.Int64N(int64(p.Period/1000) + 1)
				case k < 19:
					now += rng.Int64N(max(1, min(int64(p.Period/1000)*int64(p.Cap)/int64(p.Rate)*2, 1<<50)))
				default:
					now += 1 + rng.Int64N(1000)
				}
				// Stay before 2100, as a real clock will for a while: the scripts' instants
				// plus two periods must stay below 2^53 µs.
				now = min(now, 4_102_444_800_000_000)
				if rng.IntN(40) == 0 {
					// A limit change applies to the existing state (SetLimit).
					if l2 := changedLimit(rng, alg, base); l2.Validate() == nil {
						l, p = l2, mustParams(t, alg, l2)
						ref.p = p
						trace = append(trace, fmt.Sprintf("limit %v", l))
					}
				}
				var n uint64
				switch k := rng.IntN(10); {
				case k == 0:
					n = 0
				case k < 6:
					n = 1
				case k < 8:
					n = 1 + rng.Uint64N(min(p.Cap, 5))
				default:
					n = rng.Uint64N(p.Cap + 1)
				}
				want := ref.take(now*1000, n)
				got, err := s.Take(atInstant(ctx, now), key, alg, l, int(n))
				if err != nil {
					t.Fatalf("%v %v step %d: %v", alg, l, i, err)
				}
				if got != want.Result(p) {
					t.Fatalf("%v %v step %d: take(%d µs, %d) = %+v, want %+v; before:\n%s", alg, l, i, now, n, got, want.Result(p), strings.Join(trace, "\n"))
				}
				trace = append(trace, fmt.Sprintf("take(%d µs, %d) = %+v", now, n, got))
			}
		}
	}
}

func mustParams(t *testing.T, alg ratelimit.Algorithm, l ratelimit.Limit) algo.Params {
	t.Helper()
	p, err := algo.NewParams(alg, l)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// changedLimit returns a variant of l for a limit change. Window algorithms change
// anything; the token and leaky buckets keep the Period, and GCRA keeps Rate and Period:
// the store reads fractions stored under another Period (another Rate for GCRA) to the
// microsecond, not to the nanosecond as internal/algo does (see the package documentation).
func changedLimit(rng *rand.Rand, alg ratelimit.Algorithm, l ratelimit.Limit) ratelimit.Limit {
	scale := func(v int) int { return max(1, min(v*(1+rng.IntN(3))/(1+rng.IntN(3)), widest)) }
	switch alg {
	case ratelimit.GCRA:
		l.Burst = scale(l.Capacity(alg))
	case ratelimit.TokenBucket, ratelimit.LeakyBucket:
		l.Rate, l.Burst = scale(l.Rate), scale(l.Capacity(alg))
	default:
		l.Rate = scale(l.Rate)
		if us := int64(l.Period / time.Microsecond); rng.IntN(2) == 0 {
			l.Period = time.Duration(min(max(1, us*int64(1+rng.IntN(3))/int64(1+rng.IntN(3))), 1<<50)) * time.Microsecond
		}
	}
	return l
}
