package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// newLease returns a LeaseStore on c with its own prefix, closed when t ends.
func newLease(t testing.TB, c redis.UniversalClient, opts *LeaseOptions) *LeaseStore {
	var o LeaseOptions
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second // no decision waits on it; a loaded machine may take long
	}
	if o.Policy == ratelimit.FailLocal {
		o.Policy = ratelimit.FailClosed // FailLocal would admit from memory if a refill failed
	}
	s := NewLease(c, &o)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// count reads the units a window algorithm's state in Redis holds for its current window.
func count(t testing.TB, c redis.UniversalClient, key string) int {
	t.Helper()
	v, err := c.Get(context.Background(), key).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(v, ":")
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("state %q: %v", v, err)
	}
	return n
}

// takeUntil calls Take from goroutines until deadline and returns the units allowed. A
// denied goroutine waits RetryAfter, at most a millisecond, as a client would.
// It stops early once target units were allowed, when target > 0.
func takeUntil(s ratelimit.Store, goroutines int, deadline time.Time, target int64, key func(g, i int) string, alg ratelimit.Algorithm, l ratelimit.Limit) (allowed int64, err error) {
	var total atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline) && (target == 0 || total.Load() < target); i++ {
				r, err := s.Take(context.Background(), key(g, i), alg, l, 1)
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
				if r.Allowed {
					total.Add(1)
				} else {
					time.Sleep(min(r.RetryAfter, time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return total.Load(), *p
	}
	return total.Load(), nil
}

// TestLeaseExact: one process admits no more than the limit, its leases reach the limit,
// and Close gives back what it did not spend, so Redis ends holding exactly the units
// admitted.
func TestLeaseExact(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Addr(t))
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowCounter} {
		t.Run(alg.String(), func(t *testing.T) {
			s := newLease(t, c, &LeaseOptions{Accuracy: 0.05})
			l := ratelimit.Limit{Rate: 5000, Period: 24 * time.Hour}
			got, err := takeUntil(s, 8, time.Now().Add(5*time.Second), int64(l.Rate), func(int, int) string { return "hot" }, alg, l)
			if err != nil {
				t.Fatal(err)
			}
			if got != int64(l.Rate) {
				t.Errorf("admitted %d, want exactly %d from one process", got, l.Rate)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := count(t, c, s.strict.key("hot", alg)); n != int(got) {
				t.Errorf("Redis counts %d after Close, want the %d admitted", n, got)
			}
			st := s.Stats()
			t.Logf("%+v", st)
			if st.Scripts*20 > st.Decisions {
				t.Errorf("%d scripts for %d decisions: leases are not batching", st.Scripts, st.Decisions)
			}
		})
	}
}

// TestLeaseShared: a strict Store and a LeaseStore of the same prefix share one limit.
func TestLeaseShared(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Addr(t))
	prefix := testPrefix(t)
	strict := newStoreOn(t, c, &Options{Prefix: prefix})
	s := newLease(t, c, &LeaseOptions{Options: Options{Prefix: prefix}, Accuracy: 1})
	l := ratelimit.Limit{Rate: 100, Period: 24 * time.Hour}
	ctx := context.Background()
	if r, err := strict.Take(ctx, "k", ratelimit.FixedWindow, l, 60); err != nil || !r.Allowed {
		t.Fatalf("strict Take(60) = %+v, %v", r, err)
	}
	got, err := takeUntil(s, 4, time.Now().Add(5*time.Second), 40, func(int, int) string { return "k" }, ratelimit.FixedWindow, l)
	if err != nil {
		t.Fatal(err)
	}
	if got != 40 {
		t.Errorf("lease store admitted %d after a strict store took 60 of 100, want 40", got)
	}
	if r, err := strict.Take(ctx, "k", ratelimit.FixedWindow, l, 1); err != nil || r.Allowed {
		t.Errorf("strict Take after the lease store spent the rest = %+v, %v, want a denial", r, err)
	}
}

// TestLeaseIdle: a key idle for IdleAfter gives its unspent units back and leaves memory.
func TestLeaseIdle(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Addr(t))
	s := newLease(t, c, &LeaseOptions{Accuracy: 1, Interval: 10 * time.Millisecond, IdleAfter: 50 * time.Millisecond})
	l := ratelimit.Limit{Rate: 1000, Period: 24 * time.Hour}
	ctx := context.Background()
	var allowed int
	for i := 0; i < 200 && allowed < 10; i++ { // the first call asks for a lease
		r, err := s.Take(ctx, "idle", ratelimit.FixedWindow, l, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	rkey := s.strict.key("idle", ratelimit.FixedWindow)
	if n := count(t, c, rkey); n <= allowed {
		t.Fatalf("Redis counts %d with %d admitted: the lease holds nothing unspent", n, allowed)
	}
	pollUntil(t, 5*time.Second, "the idle key's lease released", func() bool { return count(t, c, rkey) == allowed })
	pollUntil(t, 5*time.Second, "the idle key dropped", func() bool {
		return s.Stats().Keys == 0
	})
}

func TestLeaseErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Addr(t))
	s := newLease(t, c, nil)
	ctx := context.Background()
	for _, alg := range []ratelimit.Algorithm{ratelimit.SlidingWindowLog, ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA, 0} {
		if _, err := s.Take(ctx, "k", alg, ratelimit.PerSecond(10), 1); !errors.Is(err, ratelimit.ErrInvalidAlgorithm) {
			t.Errorf("Take(%v) error = %v, want ErrInvalidAlgorithm", alg, err)
		}
	}
	if _, err := s.Take(ctx, "k", ratelimit.FixedWindow, ratelimit.PerSecond(10), 11); !errors.Is(err, ratelimit.ErrInvalidCost) {
		t.Errorf("Take(n 11 of 10) error = %v, want ErrInvalidCost", err)
	}
	bad := newLease(t, c, &LeaseOptions{Accuracy: 1.5})
	if _, err := bad.Take(ctx, "k", ratelimit.FixedWindow, ratelimit.PerSecond(10), 1); err == nil || !strings.Contains(err.Error(), "accuracy") {
		t.Errorf("Take with Accuracy 1.5 error = %v, want one naming the accuracy", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "k", ratelimit.FixedWindow, ratelimit.PerSecond(10), 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Take after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestLeaseCloseHung: Close returns within its bound while Redis hangs, reporting that
// the unspent units could not be given back, and later calls fail with ErrClosed.
func TestLeaseCloseHung(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newLease(t, c, &LeaseOptions{Options: Options{Timeout: 200 * time.Millisecond}, Accuracy: 0.01})
	l := ratelimit.Limit{Rate: 100_000, Period: 24 * time.Hour}
	if _, err := takeUntil(s, 4, time.Now().Add(5*time.Second), 1500, func(int, int) string { return "k" }, ratelimit.FixedWindow, l); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	if r, err := s.Take(context.Background(), "k", ratelimit.FixedWindow, l, 1); err != nil || !r.Allowed {
		t.Fatalf("Take from the lease while Redis hangs = %+v, %v; want allowed", r, err)
	}
	start := time.Now()
	err := s.Close(context.Background())
	// Two round trips at most, each bounded by the 200ms Timeout; the bound is loose for a
	// loaded machine, and still far below a hang.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with Redis hung, want it bounded by the Timeout", d)
	}
	if err == nil {
		t.Error("Close with Redis hung = nil, want the release's error")
	}
	if _, err := s.Take(context.Background(), "k", ratelimit.FixedWindow, l, 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Take after Close = %v, want ErrClosed", err)
	}
}
