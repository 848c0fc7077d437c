package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/rueidis"
)

// TestCluster runs the store's tests against a Redis Cluster of three primaries and three
// replicas.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// Not parallel: it loads the machine (see conformance_test.go).
	cl := redistest.StartCluster(t)
	t.Run("Differential", func(t *testing.T) {
		t.Parallel()
		testDifferential(t, newStoreOn(t, cl.Client(t), nil))
	})
	t.Run("OddKeys", func(t *testing.T) {
		t.Parallel()
		testOddKeys(t, newStoreOn(t, cl.Client(t), nil))
	})
	t.Run("KeysExpire", func(t *testing.T) {
		t.Parallel()
		c := cl.Client(t)
		testKeysExpire(t, newStoreOn(t, c, nil), c)
	})
	t.Run("TakeAll", func(t *testing.T) {
		t.Parallel()
		c := cl.Client(t)
		s := newStoreOn(t, c, nil)
		testTakeAllCluster(t, s, func(k string) (int64, error) { return c.ClusterKeySlot(context.Background(), k).Result() })
		testTakeAllDifferential(t, s)
	})
	t.Run("SpreadsOverSlots", func(t *testing.T) {
		t.Parallel()
		c := cl.Client(t)
		s := newStoreOn(t, c, nil)
		ctx := context.Background()
		slots := map[int64]bool{}
		for i := range 100 {
			k := s.key(fmt.Sprint("user:", i), ratelimit.GCRA)
			slot, err := c.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[slot] = true
		}
		if len(slots) < 90 {
			t.Fatalf("100 user keys hash to %d slots, want them spread", len(slots))
		}
	})
}

// TestClusterFailover kills the primary serving a key under load: its replica is promoted,
// the store follows the new topology by itself, and every call returns in time meanwhile.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// Not parallel: its load would disturb the timing of the parallel tests.
	t.Run("go-redis", func(t *testing.T) {
		testClusterFailover(t, func(cl *redistest.Cluster, opts *Options) *Store { return newStoreOn(t, cl.Client(t), opts) })
	})
	t.Run("rueidis", func(t *testing.T) {
		testClusterFailover(t, func(cl *redistest.Cluster, opts *Options) *Store {
			return newRueidisStore(t, newRueidis(t, cl.Addrs()...), opts)
		})
	})
}

func testClusterFailover(t *testing.T, newStore func(*redistest.Cluster, *Options) *Store) {
	cl := redistest.StartCluster(t)
	var failures atomic.Int64
	opts := &Options{
		Prefix:  testPrefix(t),
		Timeout: 100 * time.Millisecond, BreakerThreshold: 20, BreakerCooldown: 100 * time.Millisecond,
		Policy: ratelimit.FailLocal, OnError: func(error) { failures.Add(1) },
	}
	s := newStore(cl, opts)
	ctx := context.Background()
	l := ratelimit.PerSecond(1_000_000)
	hot := "hot"
	primary, err := cl.PrimaryFor(ctx, s.key(hot, ratelimit.GCRA))
	if err != nil {
		t.Fatal(err)
	}

	var slowest atomic.Int64
	var errs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := hot
				if w%2 == 1 {
					key = fmt.Sprint("k", i%100) // on every shard
				}
				t0 := time.Now()
				_, err := s.Take(ctx, key, ratelimit.GCRA, l, 1)
				if d := int64(time.Since(t0)); d > slowest.Load() {
					slowest.Store(d)
				}
				if err != nil {
					errs.Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	pollUntil(t, 30*time.Second, "load", func() bool { return s.Stats().Calls > 1000 })
	killed := time.Now()
	primary.Kill()
	pollUntil(t, 30*time.Second, "failures after the kill", func() bool { return failures.Load() > 0 })
	// The replica is promoted after cluster-node-timeout (1s) and go-redis reloads its
	// slot map every second: Redis answers for the hot key again.
	pollUntil(t, 20*time.Second, "a Redis answer for the key of the killed primary", func() bool {
		if s.Stats().BreakerOpen {
			return false
		}
		before := s.Stats().PolicyAnswers
		_, err := s.Take(ctx, hot, ratelimit.GCRA, l, 1)
		return err == nil && s.Stats().PolicyAnswers == before
	})
	t.Logf("Redis answered again %v after the kill; stats %+v; slowest call %v",
		time.Since(killed).Round(time.Millisecond), s.Stats(), time.Duration(slowest.Load()))
	if d := time.Duration(slowest.Load()); d > opts.Timeout+margin {
		t.Errorf("slowest call %v, want ≤ %v + %v", d, opts.Timeout, margin)
	}
	if n := errs.Load(); n != 0 {
		t.Errorf("%d calls returned errors under ratelimit.FailLocal", n)
	}
}

// TestSentinelFailover kills the primary of a Sentinel group: the failover client follows
// the promoted replica and the store keeps working.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	t.Run("go-redis", func(t *testing.T) {
		t.Parallel()
		testSentinelFailover(t, func(g *redistest.Sentinel, opts *Options) *Store { return newStoreOn(t, g.Client(t), opts) })
	})
	t.Run("rueidis", func(t *testing.T) {
		t.Parallel()
		testSentinelFailover(t, func(g *redistest.Sentinel, opts *Options) *Store {
			c, err := rueidis.NewClient(rueidis.ClientOption{
				InitAddress: g.SentinelAddrs(), DisableCache: true,
				Sentinel: rueidis.SentinelOption{MasterSet: g.MasterName},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return newRueidisStore(t, c, opts)
		})
	})
}

func testSentinelFailover(t *testing.T, newStore func(*redistest.Sentinel, *Options) *Store) {
	g := redistest.StartSentinel(t)
	prefix := testPrefix(t)
	s := newStore(g, &Options{Prefix: prefix, Policy: ratelimit.FailOpen, Timeout: 100 * time.Millisecond, BreakerCooldown: 100 * time.Millisecond})
	// The state before the kill is written through a store that waits for Redis and
	// reports its failures: under load, s's short timeout would answer by its policy
	// and write nothing.
	setup := newStore(g, &Options{Prefix: prefix, Policy: ratelimit.FailError, Timeout: 10 * time.Second})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 5, Period: time.Hour}
	for i := 0; i < 2; i++ {
		if r, err := setup.Take(ctx, "k", ratelimit.TokenBucket, l, 1); err != nil || !r.Allowed {
			t.Fatalf("Take = %+v, %v", r, err)
		}
	}
	// Let the replica receive the writes, then kill the primary. WAIT answers how many
	// replicas acknowledged, 0 when its timeout passed first.
	primary := g.Primary.Client(t)
	if n, err := primary.Do(ctx, "WAIT", 1, 20000).Int(); err != nil || n < 1 {
		t.Fatalf("WAIT 1 20000 = %d, %v: the replica did not acknowledge the writes", n, err)
	}
	old := g.Primary.Addr()
	killed := time.Now()
	g.Primary.Kill()
	pollUntil(t, 20*time.Second, "Redis answers through the promoted replica", func() bool {
		addr, err := g.MasterAddr(ctx)
		return err == nil && addr != old && redisAnswers(s)
	})
	t.Logf("Redis answered again %v after the kill; stats %+v", time.Since(killed).Round(time.Millisecond), s.Stats())
	// The state survived: 2 of 5 taken before the kill. Under load a call may still time
	// out and get the policy's answer, which says nothing of the state: ask until Redis
	// answers.
	var r ratelimit.Result
	pollUntil(t, 30*time.Second, "Redis to answer the peek", func() bool {
		before := s.Stats().PolicyAnswers
		var err error
		r, err = s.Take(ctx, "k", ratelimit.TokenBucket, l, 0)
		return err == nil && s.Stats().PolicyAnswers == before
	})
	if r.Remaining != 3 {
		t.Errorf("after failover Remaining = %d, want 3 (state replicated before the kill)", r.Remaining)
	}
	if st := s.Stats(); st.BreakerOpen {
		t.Errorf("breaker still open: %+v", st)
	}
}
