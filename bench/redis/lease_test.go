package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

var prefixes atomic.Int64

// freshPrefix returns a key prefix no earlier run used, so that each run starts empty.
func freshPrefix() string { return "bench" + strconv.FormatInt(prefixes.Add(1), 10) + ":" }

// BenchmarkLease compares the lease strategy with the strict store on one server, at 50
// goroutines, on one hot key and across 100,000 keys, each limited to 100,000 per minute
// (FixedWindow; ε = 5% for the leases): decisions per second, latency percentiles, Redis
// CPU, and scripts sent per decision.
func BenchmarkLease(b *testing.B) {
	addr := redistest.Addr(b)
	const conc = 50
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: conc, MinIdleConns: conc})
	defer c.Close()
	limit := ratelimit.Limit{Rate: 100_000, Period: time.Minute}
	for _, keys := range []int{1, 100_000} {
		names := make([]string, keys)
		for i := range names {
			names[i] = "bench:" + strconv.Itoa(i)
		}
		b.Run(fmt.Sprintf("strict/g=%d/keys=%d", conc, keys), func(b *testing.B) {
			s := redisstore.New(c, &redisstore.Options{Prefix: freshPrefix(), Policy: ratelimit.FailError, Timeout: 10 * time.Second})
			defer s.Close()
			runParallel(b, c, conc, names, func(ctx context.Context, key string) error {
				_, err := s.Take(ctx, key, ratelimit.FixedWindow, limit, 1)
				return err
			})
			b.ReportMetric(1, "scripts/op")
		})
		b.Run(fmt.Sprintf("lease/g=%d/keys=%d", conc, keys), func(b *testing.B) {
			s := redisstore.NewLease(c, &redisstore.LeaseOptions{
				Options:  redisstore.Options{Prefix: freshPrefix(), Policy: ratelimit.FailClosed},
				Accuracy: 0.05,
			})
			defer s.Close(context.Background())
			runParallel(b, c, conc, names, func(ctx context.Context, key string) error {
				_, err := s.Take(ctx, key, ratelimit.FixedWindow, limit, 1)
				return err
			})
			st := s.Stats()
			b.ReportMetric(float64(st.Scripts)/float64(st.Decisions), "scripts/op")
		})
	}
}

// TestLeaseTable measures, for limits L per second, N stores (each with its own client,
// as N processes would have) and accuracies ε, what the lease strategy admits per window
// on one hot key under 16 goroutines per store, each asking again at once when allowed and
// after RetryAfter (at most 1ms) when denied: the most admitted in
// any window against L (over-admission), the mean over the windows wholly inside the run
// (fill), and the scripts sent per decision and per admitted unit. The strict store sends
// one script per decision.
func TestLeaseTable(t *testing.T) {
	measureOnly(t)
	srv := redistest.Start(t)
	const goroutines = 16
	const dur = 4 * time.Second
	t.Logf("%8s %2s %5s | %10s %8s %6s | %12s %14s | %s", "L/s", "N", "ε", "most/L", "over", "fill", "scripts/dec", "scripts/unit", "decisions")
	for _, L := range []int{1000, 100_000} {
		for _, N := range []int{2, 4} {
			for _, eps := range []float64{0.01, 0.05} {
				limit := ratelimit.Limit{Rate: L, Period: time.Second}
				prefix := freshPrefix()
				stores := make([]*redisstore.LeaseStore, N)
				for i := range stores {
					c := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 4})
					defer c.Close()
					stores[i] = redisstore.NewLease(c, &redisstore.LeaseOptions{
						Options:  redisstore.Options{Prefix: prefix, Policy: ratelimit.FailClosed, Timeout: 5 * time.Second},
						Accuracy: eps, Interval: 50 * time.Millisecond,
					})
				}
				var mu sync.Mutex
				perWindow, amb := map[int64]int{}, map[[2]int64]int{}
				start := time.Now()
				deadline := start.Add(dur)
				var wg sync.WaitGroup
				for _, s := range stores {
					for range goroutines {
						wg.Go(func() {
							mine, myAmb := map[int64]int{}, map[[2]int64]int{}
							for {
								t0 := time.Now()
								if !t0.Before(deadline) {
									break
								}
								r, err := s.Take(context.Background(), "hot", ratelimit.FixedWindow, limit, 1)
								if err != nil {
									t.Error(err)
									return
								}
								if !r.Allowed {
									time.Sleep(min(r.RetryAfter, time.Millisecond)) // as a client would
								} else {
									lo, hi := redistest.WindowOf(t0, time.Now(), r.ResetAfter, limit.Period)
									if lo == hi {
										mine[lo]++
									} else {
										myAmb[[2]int64{lo, hi}]++
									}
								}
							}
							mu.Lock()
							for w, n := range mine {
								perWindow[w] += n
							}
							for w, n := range myAmb {
								amb[w] += n
							}
							mu.Unlock()
						})
					}
				}
				wg.Wait()
				var decisions, scripts, admitted uint64
				for _, s := range stores {
					st := s.Stats()
					decisions, scripts, admitted = decisions+st.Decisions, scripts+st.Scripts, admitted+st.Allowed
					_ = s.Close(context.Background())
				}
				// A call that straddled a boundary counts in the first of its windows with
				// room: the bound holds if some attribution keeps every window within it.
				for sp, n := range amb {
					for ; n > 0; n-- {
						w := sp[0]
						for i := sp[0]; i <= sp[1]; i++ {
							if perWindow[i] < L {
								w = i
								break
							}
						}
						perWindow[w]++
					}
				}
				first := (start.UnixNano() + int64(time.Second) - 1) / int64(time.Second)
				last := deadline.UnixNano()/int64(time.Second) - 1
				most, fill, whole := 0, 0.0, 0
				for w, n := range perWindow {
					most = max(most, n)
					if w >= first && w <= last {
						fill += float64(n) / float64(L)
						whole++
					}
				}
				if whole > 0 {
					fill /= float64(whole)
				}
				over := max(0, float64(most-L)/float64(L))
				t.Logf("%8d %2d %4.0f%% | %10.4f %7.2f%% %6.3f | %12.6f %14.6f | %d", L, N, eps*100, float64(most)/float64(L), 100*over, fill,
					float64(scripts)/float64(decisions), float64(scripts)/float64(max(admitted, 1)), decisions)
				if most > L {
					t.Errorf("L %d N %d ε %v: a window admitted %d", L, N, eps, most)
				}
			}
		}
	}
}
