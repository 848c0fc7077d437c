package redis

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// scriptCalls returns the EVALSHA and EVAL calls a server has run (INFO commandstats).
func scriptCalls(ctx context.Context, c *redis.Client) (int64, error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, line := range strings.Split(s, "\r\n") {
		for _, p := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if v, ok := strings.CutPrefix(line, p); ok {
				v, _, _ = strings.Cut(v, ",")
				x, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, err
				}
				n += x
			}
		}
	}
	return n, nil
}

// TestClusterScaling measures the strict store on Clusters of 1, 2 and 3 primaries (no
// replicas), through rueidis (automatic pipelining) from 256 goroutines across 100,000
// keys for 5 seconds each: decisions per second in all, and per primary its decisions per
// second, its CPU time per decision and the share of a core it used. On two cores the load
// generator takes most of the CPU and caps the total; the CPU per decision per primary
// shows what each shard would serve on a core of its own.
func TestClusterScaling(t *testing.T) {
	measureOnly(t)
	const (
		goroutines = 256
		keys       = 100_000
		dur        = 5 * time.Second
	)
	names := make([]string, keys)
	for i := range names {
		names[i] = "user:" + strconv.Itoa(i)
	}
	limit := ratelimit.Limit{Rate: 1_000_000, Period: time.Second}
	for _, n := range []int{1, 2, 3} {
		cl := redistest.StartPrimaries(t, n)
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: cl.Addrs(), DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		s := redisstore.NewRueidis(rc, &redisstore.Options{Policy: ratelimit.FailError, Timeout: 10 * time.Second})
		ctx := context.Background()
		nodes := make([]*redis.Client, n)
		cpu0, calls0 := make([]time.Duration, n), make([]int64, n)
		for i, srv := range cl.Nodes {
			nodes[i] = redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer nodes[i].Close()
		}
		for _, k := range names[:1000] { // load the scripts, open the connections
			if _, err := s.Take(ctx, k, ratelimit.GCRA, limit, 1); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range nodes {
			if cpu0[i], err = serverCPU(ctx, c); err != nil {
				t.Fatal(err)
			}
			if calls0[i], err = scriptCalls(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		var total atomic.Int64
		start := time.Now()
		deadline := start.Add(dur)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				var mine int64
				for i := g; time.Now().Before(deadline); i += goroutines {
					if _, err := s.Take(ctx, names[i%keys], ratelimit.GCRA, limit, 1); err != nil {
						t.Error(err)
						return
					}
					mine++
				}
				total.Add(mine)
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		t.Logf("%d primaries: %.0f decisions/s in all", n, float64(total.Load())/elapsed.Seconds())
		for i, c := range nodes {
			cpu, err := serverCPU(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			calls, err := scriptCalls(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			d := calls - calls0[i]
			t.Logf("  primary %d: %8.0f decisions/s, %5.2f µs CPU per decision, %4.0f%% of a core",
				i+1, float64(d)/elapsed.Seconds(), float64(cpu-cpu0[i])/1e3/float64(max(d, 1)), 100*float64(cpu-cpu0[i])/float64(elapsed))
		}
		s.Close()
		rc.Close()
	}
}
