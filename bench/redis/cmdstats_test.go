package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// TestServerCost reports the server's CPU time per script call (INFO commandstats), the
// part of a decision no client can pipeline away.
func TestServerCost(t *testing.T) {
	measureOnly(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	s := redisstore.New(c, &redisstore.Options{Policy: ratelimit.FailError})
	defer s.Close()
	limit := ratelimit.Limit{Rate: 1_000_000, Period: time.Second}
	measure := func(name string, take func(i int) error) {
		c.ConfigResetStat(ctx)
		for i := range 20000 {
			if err := take(i); err != nil {
				t.Fatal(err)
			}
		}
		st, _ := c.Info(ctx, "commandstats").Result()
		for _, line := range strings.Split(st, "\r\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") {
				t.Logf("%-36s %s", name, line)
			}
		}
	}
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter, ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA} {
		measure("redisstore "+alg.String(), func(i int) error {
			_, err := s.Take(ctx, "k", alg, limit, 1)
			return err
		})
	}
	rr := redis_rate.NewLimiter(c)
	measure("redis_rate", func(i int) error {
		_, err := rr.Allow(ctx, "k", redis_rate.PerSecond(1_000_000))
		return err
	})
}
