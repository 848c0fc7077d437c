package redis

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/benchload"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

var algorithms = []ratelimit.Algorithm{
	ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA,
}

func usedMemory(ctx context.Context, c *redis.Client) (int64, error) {
	s, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// TestMemoryPerKey measures Redis memory per key: the used_memory delta over 100,000 keys
// ("user:0" to "user:99999", one unit taken each, limit 100 per day so that no key expires
// during the measurement), per algorithm, on a server of its own. For scale it also
// measures redis_rate and the floor of any layout with one key per user key: an integer
// value (no allocation of its own) under a key name as long as ours, with a TTL.
func TestMemoryPerKey(t *testing.T) {
	measureOnly(t)
	const keys = 100_000
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	defer c.Close()
	ctx := context.Background()
	s := redisstore.New(c, &redisstore.Options{Policy: ratelimit.FailError, Timeout: 10 * time.Second})
	defer s.Close()
	limit := ratelimit.Limit{Rate: 100, Period: 24 * time.Hour}
	fill := func(name string, take func(key string) error) {
		if err := c.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		before, err := usedMemory(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < keys; i = next.Add(1) - 1 {
					if err := take("user:" + strconv.FormatInt(i, 10)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		after, err := usedMemory(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.DBSize(ctx).Result()
		if err != nil || n != keys {
			t.Fatalf("%s: %d keys, %v; want %d", name, n, err, keys)
		}
		if name != "" {
			t.Logf("%-36s %6.1f bytes per key", name, float64(after-before)/keys)
		}
	}
	// Load the scripts.
	for _, alg := range algorithms {
		if _, err := s.Take(ctx, "warm-up", alg, limit, 1); err != nil {
			t.Fatal(err)
		}
	}
	// A first fill grows the server's allocations for good; it is not reported.
	fill("", func(key string) error { return c.Set(ctx, key, 1, time.Hour).Err() })
	for _, alg := range algorithms {
		fill("redisstore "+alg.String(), func(key string) error {
			_, err := s.Take(ctx, key, alg, limit, 1)
			return err
		})
	}
	rr := redis_rate.NewLimiter(c)
	fill("redis_rate (GCRA)", func(key string) error {
		_, err := rr.Allow(ctx, key, redis_rate.Limit{Rate: 100, Period: 24 * time.Hour, Burst: 100})
		return err
	})
	fill("floor: SET ratelimit:{key}:tb 12345 PX", func(key string) error {
		return c.Set(ctx, "ratelimit:{"+key+"}:tb", 12345, time.Hour).Err()
	})
}

// measureOnly skips t unless BENCH_REDIS_MEASURE=1: measurements are not tests, and take
// a while.
func measureOnly(t *testing.T) {
	if os.Getenv("BENCH_REDIS_MEASURE") != "1" {
		t.Skip("a measurement: run with BENCH_REDIS_MEASURE=1")
	}
}

// target is one limiter under benchmark.
type target struct {
	name string
	take func(ctx context.Context, key string) error
}

func targets(c *redis.Client, rc rueidis.Client) ([]target, func()) {
	opts := &redisstore.Options{Policy: ratelimit.FailError, Timeout: 10 * time.Second}
	s, rs := redisstore.New(c, opts), redisstore.NewRueidis(rc, opts)
	alone := redisstore.New(c, &redisstore.Options{Policy: ratelimit.FailError, Timeout: 10 * time.Second, SendAlone: true})
	// A million per second: never reached here, so every call is allowed, and low enough
	// that every call does its whole work. At a billion per second redis_rate's TAT, float
	// seconds since the epoch, does not move by one emission interval (1ns is below the
	// float's resolution there): it never writes, admits without limit, and measures a
	// read-only script.
	limit := ratelimit.Limit{Rate: 1_000_000, Period: time.Second}
	var ts []target
	for _, alg := range []ratelimit.Algorithm{ratelimit.GCRA, ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.SlidingWindowCounter, ratelimit.FixedWindow, ratelimit.SlidingWindowLog} {
		ts = append(ts, target{"redisstore-" + alg.String(), func(ctx context.Context, key string) error {
			_, err := s.Take(ctx, key, alg, limit, 1)
			return err
		}})
		ts = append(ts, target{"redisstore-alone-" + alg.String(), func(ctx context.Context, key string) error {
			_, err := alone.Take(ctx, key, alg, limit, 1)
			return err
		}})
		ts = append(ts, target{"redisstore-rueidis-" + alg.String(), func(ctx context.Context, key string) error {
			_, err := rs.Take(ctx, key, alg, limit, 1)
			return err
		}})
	}
	rr := redis_rate.NewLimiter(c)
	ts = append(ts, target{"redis_rate", func(ctx context.Context, key string) error {
		_, err := rr.Allow(ctx, key, redis_rate.PerSecond(1_000_000))
		return err
	}})
	return ts, func() { s.Close(); alone.Close(); rs.Close() }
}

// BenchmarkTake measures decisions per second and latency percentiles at 1, 10, 50 and
// 200 concurrent goroutines, on one hot key and across 10,000 keys, for the Redis store
// through go-redis (concurrent calls sharing pipelines, the default, and each sent alone)
// and rueidis, and redis_rate, on the same server.
func BenchmarkTake(b *testing.B) {
	addr := redistest.Addr(b)
	for _, conc := range []int{1, 10, 50, 200} {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: conc, MinIdleConns: conc})
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
		if err != nil {
			b.Fatal(err)
		}
		ts, done := targets(c, rc)
		for _, tg := range ts {
			for _, keys := range []int{1, 10_000} {
				names := make([]string, keys)
				for i := range names {
					names[i] = "bench:" + strconv.Itoa(i)
				}
				b.Run(fmt.Sprintf("%s/g=%d/keys=%d", tg.name, conc, keys), func(b *testing.B) {
					runParallel(b, c, conc, names, tg.take)
				})
			}
		}
		done()
		c.Close()
		rc.Close()
	}
}

// serverCPU returns the CPU time the Redis server behind c has used, user and system.
func serverCPU(ctx context.Context, c *redis.Client) (time.Duration, error) {
	s, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(s, "\r\n") {
		for _, f := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, err
				}
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// runParallel runs take on keys from conc goroutines for b.N calls in all, with the CPU
// time of the Redis server behind c (see internal/benchload).
func runParallel(b *testing.B, c *redis.Client, conc int, keys []string, take func(ctx context.Context, key string) error) {
	srv := benchload.Server{Name: "redis", CPU: func() (time.Duration, error) { return serverCPU(context.Background(), c) }}
	benchload.Parallel(b, conc, srv, func(ctx context.Context, i int) error { return take(ctx, keys[i%len(keys)]) })
}
