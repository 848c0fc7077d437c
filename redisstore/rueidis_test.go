package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/rueidis"
)

func newRueidis(t testing.TB, addrs ...string) rueidis.Client {
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newRueidisStore(t testing.TB, c rueidis.Client, opts *Options) *Store {
	o := Options{Prefix: testPrefix(t), Policy: ratelimit.FailError, Timeout: 5 * time.Second}
	if opts != nil {
		o = *opts
	}
	s := NewRueidis(c, &o)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRueidis runs the store's tests through a rueidis client on a standalone server.
func TestRueidis(t *testing.T) {
	// Not parallel: it loads the machine (see conformance_test.go).
	addr := redistest.Addr(t)
	t.Run("Differential", func(t *testing.T) {
		t.Parallel()
		testDifferential(t, newRueidisStore(t, newRueidis(t, addr), nil))
	})
	t.Run("OddKeys", func(t *testing.T) {
		t.Parallel()
		testOddKeys(t, newRueidisStore(t, newRueidis(t, addr), nil))
	})
	t.Run("TakeAll", func(t *testing.T) {
		t.Parallel()
		testTakeAllDifferential(t, newRueidisStore(t, newRueidis(t, addr), nil))
	})
	t.Run("KeysExpire", func(t *testing.T) {
		t.Parallel()
		testKeysExpire(t, newRueidisStore(t, newRueidis(t, addr), nil), newClient(t, addr))
	})
	t.Run("ScriptFlush", func(t *testing.T) {
		t.Parallel()
		s := newRueidisStore(t, newRueidis(t, addr), nil)
		c := newClient(t, addr)
		ctx := context.Background()
		l := ratelimit.Limit{Rate: 2, Period: time.Hour}
		for i := range 3 {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1)
			if err != nil || r.Allowed != (i < 2) {
				t.Fatalf("call %d after SCRIPT FLUSH = %+v, %v", i, r, err)
			}
		}
	})
}

// TestRueidisCluster runs the store's tests through rueidis on a Cluster.
func TestRueidisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	// Not parallel: it loads the machine (see conformance_test.go).
	cl := redistest.StartCluster(t)
	t.Run("Differential", func(t *testing.T) {
		t.Parallel()
		testDifferential(t, newRueidisStore(t, newRueidis(t, cl.Addrs()...), nil))
	})
	t.Run("OddKeys", func(t *testing.T) {
		t.Parallel()
		testOddKeys(t, newRueidisStore(t, newRueidis(t, cl.Addrs()...), nil))
	})
	t.Run("TakeAll", func(t *testing.T) {
		t.Parallel()
		s := newRueidisStore(t, newRueidis(t, cl.Addrs()...), nil)
		c := cl.Client(t)
		testTakeAllCluster(t, s, func(k string) (int64, error) { return c.ClusterKeySlot(context.Background(), k).Result() })
		testTakeAllDifferential(t, s)
	})
}

// TestRueidisKillRestart kills the server under load with a rueidis client: calls return
// in time with policy answers, and the store recovers by itself.
func TestRueidisKillRestart(t *testing.T) {
	// Not parallel: its load would disturb the timing of the parallel tests.
	srv := redistest.Start(t)
	c := newRueidis(t, srv.Addr())
	opts := &Options{Prefix: testPrefix(t), Timeout: 100 * time.Millisecond, BreakerThreshold: 5, BreakerCooldown: 200 * time.Millisecond, OnError: func(error) {}}
	s := newRueidisStore(t, c, opts)
	ld := startLoad(s, 8, ratelimit.GCRA, ratelimit.PerSecond(1000))
	defer ld.finish()
	pollUntil(t, 30*time.Second, "calls before the kill", func() bool { return ld.calls.Load() > 100 })
	srv.Kill()
	pollUntil(t, 30*time.Second, "the breaker to open", func() bool { return s.Stats().BreakerOpen })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 30*time.Second, "the store to recover", func() bool { return !s.Stats().BreakerOpen && redisAnswers(s) })
	ld.finish()
	ld.stop = make(chan struct{})
	if d := time.Duration(ld.slowest.Load()); d > opts.Timeout+margin {
		t.Errorf("slowest call %v, want ≤ %v + %v", d, opts.Timeout, margin)
	}
	if n := ld.errs.Load(); n != 0 {
		t.Errorf("%d calls returned errors under ratelimit.FailLocal, last: %v", n, ld.lastErr.Load())
	}
	t.Logf("stats %+v, slowest call %v", s.Stats(), time.Duration(ld.slowest.Load()))
}
