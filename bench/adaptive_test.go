package bench

import (
	"context"
	"flag"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/closedloop"
)

// BenchmarkConcurrencyLimiter measures one Acquire and its Release (for failsafe-go's
// AdaptiveLimiter, TryAcquirePermit and Record) from every goroutine at once, with a
// limit never reached: the cost the limiter adds to each call. cpu-ns/op is the
// process's CPU time per call, which other processes on the machine do not inflate.
func BenchmarkConcurrencyLimiter(b *testing.B) {
	const big = 1 << 16
	b.Run("impl=ratelimit-vegas", func(b *testing.B) {
		l, err := concurrency.New(&concurrency.Options{InitialLimit: big, MaxLimit: big})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, _ := l.Acquire(ctx)
				t.Release(concurrency.Success)
			}
		})
		cpu.report(b, int64(b.N))
	})
	b.Run("impl=failsafe-go", func(b *testing.B) {
		l := adaptivelimiter.NewBuilder[any]().WithLimits(1, big, big).Build()
		b.ReportAllocs()
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, ok := l.TryAcquirePermit()
				if ok {
					p.Record()
				}
			}
		})
		cpu.report(b, int64(b.N))
	})
}

var (
	closedLoop = flag.Bool("closedloop", false, "run TestClosedLoopComparison")
	jitter     = flag.Float64("jitter", 0, "spread service times by ± this fraction in TestClosedLoopComparison")
)

// TestClosedLoopComparison runs the closed-loop scenario of internal/closedloop (100
// clients, a pool of 20 workers of 20 ms, then 10, 15 s each, in fake time) through
// this module's concurrency limiters and failsafe-go's AdaptiveLimiter, each starting
// at a limit of 5 with a maximum of 200, and logs what each achieved. It runs only with
// -closedloop; -jitter 0.5 spreads service times over 10–30 ms:
//
//	go test -run ClosedLoop -closedloop -v [-jitter 0.5]
func TestClosedLoopComparison(t *testing.T) {
	if !*closedLoop {
		t.Skip("run with -closedloop")
	}
	const service = 20 * time.Millisecond
	cfg := closedloop.Config{Clients: 100, Service: service, Knees: []int{20, 10}, Phase: 15 * time.Second, Backoff: 100 * time.Millisecond, Band: 0.25, Jitter: *jitter}
	ours := func(alg concurrency.Algorithm) func(t *testing.T) (func(http.Handler) http.Handler, func() int) {
		return func(t *testing.T) (func(http.Handler) http.Handler, func() int) {
			l, err := concurrency.New(&concurrency.Options{Algorithm: alg, InitialLimit: 5, MaxLimit: 200})
			if err != nil {
				t.Fatal(err)
			}
			return (&httplimit.Concurrency{Limiter: l}).Handler, l.Limit
		}
	}
	for _, impl := range []struct {
		name  string
		setup func(t *testing.T) (func(http.Handler) http.Handler, func() int)
	}{
		{"ratelimit vegas (alpha 1, beta 2 × log10)", ours(&concurrency.Vegas{Alpha: concurrency.Log10(1), Beta: concurrency.Log10(2), Threshold: concurrency.Log10(0.5)})},
		{"ratelimit vegas (defaults)", ours(&concurrency.Vegas{})},
		{"ratelimit gradient2 (defaults)", ours(&concurrency.Gradient2{})},
		{"ratelimit aimd (timeout 30ms)", ours(&concurrency.AIMD{Timeout: 30 * time.Millisecond})},
		{"failsafe-go adaptivelimiter (defaults)", func(t *testing.T) (func(http.Handler) http.Handler, func() int) {
			l := adaptivelimiter.NewBuilder[any]().WithLimits(1, 200, 5).Build()
			wrap := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					p, ok := l.TryAcquirePermit()
					if !ok {
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					defer p.Record()
					next.ServeHTTP(w, r)
				})
			}
			return wrap, l.Limit
		}},
	} {
		t.Run(impl.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				wrap, limit := impl.setup(t)
				for _, p := range closedloop.Run(cfg, wrap, limit) {
					settle := "never"
					if p.Settle >= 0 {
						settle = p.Settle.String()
					}
					second := p.Limits[len(p.Limits)/2:]
					lo, hi := second[0], second[0]
					for _, v := range second {
						lo, hi = min(lo, v), max(hi, v)
					}
					t.Logf("knee %2d: settled in ±25%% after %-6s; limit in 2nd half [%d, %d]; goodput %4.0f/s (%3.0f%%); p50 %v p99 %v; refused %d",
						p.Knee, settle, lo, hi, p.Goodput, 100*p.Goodput/p.Capacity, p.P50.Round(100*time.Microsecond), p.P99.Round(100*time.Microsecond), p.Refused)
					if p.Goodput == 0 {
						t.Errorf("knee %d: nothing served", p.Knee)
					}
				}
			})
		})
	}
}
