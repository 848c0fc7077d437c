package adaptive

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// TestRateControlLaw drives a Rate with a scripted load (none, then full for 10 s, then
// none again) and checks the limit against the documented law at chosen instants.
func TestRateControlLaw(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memorystore.New(nil)
		defer store.Close()
		lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 20})
		var load atomic.Value
		load.Store(0.0)
		r := NewRate(lim, func() float64 { return load.Load().(float64) }, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx); close(done) }()

		rateAt := func(d time.Duration) int {
			time.Sleep(d)
			synctest.Wait()
			return lim.Limit().Rate
		}
		// expected: 100 × (0.25 + 0.75 × (1 − x)), x the smoothed load
		want := func(x float64) int { return int(math.Round(100 * (0.25 + 0.75*(1-x)))) }
		if got := rateAt(5 * time.Second); got != 100 {
			t.Errorf("no load: rate %d, want 100", got)
		}
		load.Store(1.0)
		if got, w := rateAt(2*time.Second), want(1-math.Exp(-1)); got != w {
			t.Errorf("2s of full load: rate %d, want %d", got, w)
		}
		if got, w := rateAt(4*time.Second), want(1-math.Exp(-3)); got != w {
			t.Errorf("6s of full load: rate %d, want %d", got, w)
		}
		if got := rateAt(4 * time.Second); got < 25 || got > 27 {
			t.Errorf("10s of full load: rate %d, want the floor, 25, or just above", got)
		}
		if b := lim.Limit().Burst; b < 5 || b > 6 {
			t.Errorf("burst %d at full load, want about 25%% of 20", b)
		}
		x := r.Load()
		load.Store(0.0)
		if got, w := rateAt(30*time.Second), want(x*math.Exp(-1)); got != w {
			t.Errorf("30s after the load ended: rate %d, want %d", got, w)
		}
		if got := rateAt(210 * time.Second); got != 100 {
			t.Errorf("240s after the load ended: rate %d, want 100", got)
		}
		load.Store(1.0)
		rateAt(10 * time.Second)
		cancel()
		<-done
		if got := lim.Limit(); got.Rate != 100 || got.Burst != 20 {
			t.Errorf("after Run returned: limit %v, want the configured 100/s burst 20", got)
		}
	})
}

// TestConcurrencyLoad checks the signal of a concurrency limiter: none while it is
// lightly used, full while it sheds.
func TestConcurrencyLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(10), InitialLimit: 10, MinSamples: 1})
		if err != nil {
			t.Fatal(err)
		}
		sig := ConcurrencyLoad(cl, 0.8)
		drive := func(n int) {
			var toks []concurrency.Token
			for range n {
				tok, _ := cl.Acquire(context.Background())
				toks = append(toks, tok)
			}
			time.Sleep(200 * time.Millisecond)
			for _, tok := range toks {
				tok.Release(concurrency.Success)
			}
		}
		drive(5)
		drive(5)
		if s := sig(); s > 0 {
			t.Errorf("signal at 5 of 10 in flight = %v, want at most 0", s)
		}
		drive(30)
		drive(30)
		if s := sig(); s < 1 {
			t.Errorf("signal while shedding = %v, want at least 1", s)
		}
	})
}
