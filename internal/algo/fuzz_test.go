package algo

import (
	"math"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// event is one allowed call on the effective timeline.
type event struct {
	at int64
	n  uint64
}

// trace decodes fuzz input into a limit and a sequence of (gap, cost) calls; a gap may be
// negative, as when timestamps arrive out of order.
type trace struct {
	limit ratelimit.Limit
	calls []struct {
		gap int64
		n   int
	}
}

var periods = []time.Duration{time.Millisecond, 7 * time.Millisecond, time.Second, 3 * time.Second, time.Hour}

func decodeTrace(data []byte) (trace, bool) {
	if len(data) < 4 {
		return trace{}, false
	}
	tr := trace{limit: ratelimit.Limit{
		Rate:   int(data[0]%20) + 1,
		Period: periods[int(data[1])%len(periods)],
		Burst:  int(data[2] % 25),
	}}
	data = data[3:]
	for len(data) >= 2 && len(tr.calls) < 300 {
		gapByte, costByte := data[0], data[1]
		data = data[2:]
		// Gaps from −1/8 to +1 Period, biased to small ones so bursts happen.
		gap := int64(tr.limit.Period) * (int64(gapByte) - 32) / 224
		if gapByte%4 == 0 {
			gap = int64(gapByte) // nanoseconds: many calls at nearly one instant
		}
		tr.calls = append(tr.calls, struct {
			gap int64
			n   int
		}{gap, int(costByte % 6)})
	}
	return tr, true
}

// run replays tr through alg and returns the allowed calls on the effective timeline: an
// instant earlier than the key's last update (the last call that took units) is taken as
// that update's instant, which is what the algorithms clamp to. A call that took nothing
// (denied, or n == 0) changes no state, so a later call stamped before it is still counted
// at its own instant.
func run(t *testing.T, alg ratelimit.Algorithm, tr trace) ([]event, Params) {
	p, err := NewParams(alg, tr.limit)
	if err != nil {
		t.Fatal(err)
	}
	now, lastUpdate := origin, int64(math.MinInt64)
	var st State
	var log Log
	if alg != ratelimit.SlidingWindowLog {
		st = Init(alg, p, now)
	}
	var allowed []event
	for _, c := range tr.calls {
		now += c.gap
		n, err := p.Cost(c.n)
		if err != nil {
			continue
		}
		var d Decision
		if alg == ratelimit.SlidingWindowLog {
			d = log.Take(now, p, n)
		} else {
			st, d = Take(alg, st, now, p, n)
		}
		if d.Allowed && n > 0 {
			lastUpdate = max(lastUpdate, now)
			allowed = append(allowed, event{lastUpdate, n})
		}
		if d.Allowed != (d.RetryAfter == 0) || d.RetryAfter < 0 || d.ResetAfter < 0 || d.Remaining > p.Cap {
			t.Fatalf("%v: inconsistent decision %+v", alg, d)
		}
	}
	return allowed, p
}

// unitsIn sums the units allowed at instants in [from, to].
func unitsIn(ev []event, from, to int64) uint64 {
	var sum uint64
	for _, e := range ev {
		if e.at >= from && e.at <= to {
			sum += e.n
		}
	}
	return sum
}

func FuzzWindowsNeverExceedRate(f *testing.F) {
	f.Add([]byte{4, 2, 0, 40, 1, 200, 5, 33, 3, 0, 5, 250, 2})
	f.Add([]byte{9, 1, 0, 0, 5, 0, 5, 4, 5, 8, 5, 255, 5, 0, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, ok := decodeTrace(data)
		if !ok {
			return
		}
		rate := uint64(tr.limit.Rate)
		period := int64(tr.limit.Period)

		// Sliding window log: at most Rate in every window (t − Period, t].
		ev, _ := run(t, ratelimit.SlidingWindowLog, tr)
		for _, e := range ev {
			if got := unitsIn(ev, e.at-period+1, e.at); got > rate {
				t.Fatalf("sliding_window_log: %d units in the window ending at %d, rate %d", got, e.at, rate)
			}
		}
		// Fixed window and sliding window counter: at most Rate in every aligned window.
		// The counter's estimate also bounds any window of length Period by 2·Rate.
		for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowCounter} {
			ev, _ := run(t, alg, tr)
			for _, e := range ev {
				start := windowStart(e.at, uint64(period))
				if got := unitsIn(ev, start, start+period-1); got > rate {
					t.Fatalf("%v: %d units in the window starting at %d, rate %d", alg, got, start, rate)
				}
				if got := unitsIn(ev, e.at-period+1, e.at); alg == ratelimit.SlidingWindowCounter && got > 2*rate {
					t.Fatalf("%v: %d units in the window ending at %d, rate %d", alg, got, e.at, rate)
				}
			}
		}
	})
}

func FuzzBucketsNeverExceedCapacityPlusRefill(f *testing.F) {
	f.Add([]byte{4, 2, 3, 40, 1, 200, 5, 33, 3, 0, 5, 250, 2})
	f.Add([]byte{3, 0, 0, 0, 5, 0, 5, 4, 5, 8, 5, 255, 5, 0, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, ok := decodeTrace(data)
		if !ok {
			return
		}
		for _, alg := range []ratelimit.Algorithm{ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA} {
			ev, p := run(t, alg, tr)
			// In any span [a, b]: at most Cap + ⌊Rate·(b − a)/Period⌋ units.
			for i := range ev {
				var sum uint64
				for j := i; j < len(ev); j++ {
					sum += ev[j].n
					span := uint64(ev[j].at - ev[i].at)
					bound, _ := mul(p.Rate, span).div(p.Period)
					if sum > p.Cap+bound {
						t.Fatalf("%v: %d units in [%d, %d], bound %d + %d", alg, sum, ev[i].at, ev[j].at, p.Cap, bound)
					}
				}
			}
		}
	})
}
