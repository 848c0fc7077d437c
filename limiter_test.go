package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func newStore(t *testing.T) *memorystore.Store {
	s := memorystore.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// countingStore counts the calls that reach a real store.
type countingStore struct {
	ratelimit.Store
	takes atomic.Int64
}

func (c *countingStore) Take(ctx context.Context, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	c.takes.Add(1)
	return c.Store.Take(ctx, key, alg, l, n)
}

func TestAllowAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.FixedWindow, ratelimit.PerMinute(2))
		ctx := context.Background()
		for i, want := range []bool{true, true, false} {
			r, err := lim.Allow(ctx, "k")
			if err != nil || r.Allowed != want {
				t.Fatalf("call %d: Allow = %v, %v; want %v", i, r.Allowed, err, want)
			}
		}
		if err := lim.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if r, _ := lim.Allow(ctx, "k"); !r.Allowed || r.Remaining != 1 {
			t.Errorf("after Reset: Allow = %+v, want allowed with 1 remaining", r)
		}
	})
}

func TestSetLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.TokenBucket, ratelimit.PerHour(10))
		ctx := context.Background()
		lim.AllowN(ctx, "k", 4) // 6 tokens left
		lim.SetLimit(ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 3})
		r, err := lim.AllowN(ctx, "k", 0)
		if err != nil || !r.Allowed || r.Remaining != 3 || r.Limit.Burst != 3 {
			t.Errorf("after lowering Burst to 3: AllowN(0) = %+v, %v; want allowed, 3 remaining (clamped)", r, err)
		}
		if got := lim.Limit(); got.Burst != 3 {
			t.Errorf("Limit() = %+v, want Burst 3", got)
		}
	})
}

func TestInvalidArgumentsAreErrors(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := ratelimit.New(s, ratelimit.GCRA, ratelimit.Limit{}).Allow(ctx, "k"); !errors.Is(err, ratelimit.ErrInvalidLimit) {
		t.Errorf("zero limit: %v, want ErrInvalidLimit", err)
	}
	if _, err := ratelimit.New(s, 0, ratelimit.PerSecond(1)).Allow(ctx, "k"); !errors.Is(err, ratelimit.ErrInvalidAlgorithm) {
		t.Errorf("algorithm 0: %v, want ErrInvalidAlgorithm", err)
	}
	lim := ratelimit.New(s, ratelimit.GCRA, ratelimit.PerSecond(5))
	for _, n := range []int{-1, 6} {
		if _, err := lim.AllowN(ctx, "k", n); !errors.Is(err, ratelimit.ErrInvalidCost) {
			t.Errorf("AllowN(%d): %v, want ErrInvalidCost", n, err)
		}
		if err := lim.WaitN(ctx, "k", n); !errors.Is(err, ratelimit.ErrInvalidCost) {
			t.Errorf("WaitN(%d): %v, want ErrInvalidCost", n, err)
		}
	}
	if _, err := lim.Allow(ctx, ""); !errors.Is(err, ratelimit.ErrInvalidKey) {
		t.Errorf("empty key: %v, want ErrInvalidKey", err)
	}
}

// TestWaitShapes checks that a leaky bucket of Burst 1 and Wait space requests exactly T apart.
func TestWaitShapes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.LeakyBucket, ratelimit.Limit{Rate: 4, Period: time.Second, Burst: 1})
		start := time.Now()
		for i := range 5 {
			if err := lim.Wait(context.Background(), "k"); err != nil {
				t.Fatal(err)
			}
			if got, want := time.Since(start), time.Duration(i)*250*time.Millisecond; got != want {
				t.Errorf("Wait %d returned at %v, want %v", i, got, want)
			}
		}
	})
}

func TestWaitFailsAtOnceWhenDeadlineTooClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.GCRA, ratelimit.PerSecond(1))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		lim.Allow(ctx, "k")
		start := time.Now()
		err := lim.Wait(ctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want an error matching context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Wait returned after %v, want at once", waited)
		}
	})
}

func TestWaitHonoursCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.GCRA, ratelimit.PerHour(1))
		ctx, cancel := context.WithCancel(context.Background())
		lim.Allow(ctx, "k")
		done := make(chan error)
		go func() { done <- lim.Wait(ctx, "k") }()
		time.Sleep(time.Minute)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel = %v, want context.Canceled", err)
		}
	})
}

// TestWaitDoesNotStampede runs 20 waiters on one key: each passes in its own slot, and the
// store is asked about twice per waiter, not once per waiter per slot.
func TestWaitDoesNotStampede(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &countingStore{Store: newStore(t)}
		lim := ratelimit.New(store, ratelimit.TokenBucket, ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 1})
		lim.Allow(context.Background(), "k")
		start := time.Now()
		var mu sync.Mutex
		var passed []time.Duration
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if err := lim.Wait(context.Background(), "k"); err != nil {
					t.Error(err)
				}
				mu.Lock()
				passed = append(passed, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		for i, at := range passed {
			if want := time.Duration(i+1) * 100 * time.Millisecond; at != want {
				t.Errorf("waiter %d passed at %v, want %v", i, at, want)
			}
		}
		if got := store.takes.Load(); got > 41 {
			t.Errorf("20 waiters made %d store calls, want at most 41", got)
		}
	})
}

func TestDoAndWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := ratelimit.New(newStore(t), ratelimit.FixedWindow, ratelimit.PerMinute(1))
		ctx := context.Background()
		calls := 0
		fn := func(context.Context) error { calls++; return nil }
		if err := lim.Do(ctx, "k", fn); err != nil {
			t.Fatal(err)
		}
		err := lim.Do(ctx, "k", fn)
		var le *ratelimit.LimitedError
		if !errors.Is(err, ratelimit.ErrLimited) || !errors.As(err, &le) || le.Result.RetryAfter <= 0 || le.Key != "k" {
			t.Fatalf("second Do = %v, want a LimitedError with a RetryAfter", err)
		}
		if calls != 1 {
			t.Errorf("fn ran %d times, want 1", calls)
		}

		double := ratelimit.Wrap(lim, func(x int) string { return "x" }, func(_ context.Context, x int) (int, error) { return 2 * x, nil })
		if got, err := double(ctx, 21); err != nil || got != 42 {
			t.Errorf("wrapped call = %d, %v; want 42, nil", got, err)
		}
		if got, err := double(ctx, 21); !errors.Is(err, ratelimit.ErrLimited) || got != 0 {
			t.Errorf("limited wrapped call = %d, %v; want 0, ErrLimited", got, err)
		}
	})
}

// plainStore hides the BatchStore methods of a real store.
type plainStore struct{ ratelimit.Store }

func TestTakeAll(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	reqs := []ratelimit.Request{
		{Key: "ip:1", Algorithm: ratelimit.GCRA, Limit: ratelimit.PerHour(2), N: 1},
		{Key: "user:1", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerHour(1), N: 1},
	}
	results := make([]ratelimit.Result, len(reqs))
	for i, want := range []bool{true, false} {
		if ok, err := ratelimit.TakeAll(ctx, store, reqs, results); err != nil || ok != want {
			t.Fatalf("call %d: TakeAll = %v, %v; want %v", i, ok, err, want)
		}
	}
	if results[0].Remaining != 1 {
		t.Errorf("ip:1 after a denied batch: %d left, want 1", results[0].Remaining)
	}
	if _, err := ratelimit.TakeAll(ctx, plainStore{store}, reqs, results); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("TakeAll on a store without batches = %v, want errors.ErrUnsupported", err)
	}
	if _, err := ratelimit.TakeAll(ctx, store, reqs, results[:1]); err == nil {
		t.Error("TakeAll with too few results: nil error")
	}
}

func TestObserver(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]int{}
	obs := ratelimit.ObserverFunc(func(e ratelimit.Event) {
		mu.Lock()
		defer mu.Unlock()
		counts[e.Rule+"/"+e.KeyClass+"/"+e.Key+"/"+e.Outcome.String()]++
		if (e.Outcome == ratelimit.Failed) != (e.Err != nil) || e.Latency < 0 {
			t.Errorf("inconsistent event %+v", e)
		}
	})
	lim := ratelimit.NewWithOptions(newStore(t), ratelimit.GCRA, ratelimit.PerHour(2),
		&ratelimit.Options{Name: "login", KeyClass: "user", Observer: obs})
	ctx := context.Background()
	for range 3 {
		lim.Allow(ctx, "alice")
	}
	lim.Allow(ctx, "")
	want := map[string]int{"login/user/alice/allowed": 2, "login/user/alice/denied": 1, "login/user//failed": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s observed %d times, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if lim.Store() == nil {
		t.Error("Store() = nil")
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	lim := ratelimit.New(newStore(t), ratelimit.GCRA, ratelimit.PerSecond(1_000_000_000))
	ctx := context.Background()
	lim.Allow(ctx, "k")
	if allocs := testing.AllocsPerRun(1000, func() { lim.Allow(ctx, "k") }); allocs != 0 {
		t.Errorf("Allow on an existing key allocates %v times, want 0", allocs)
	}
}

// compilingStore counts the limits compiled by a real store and the calls that reach its
// Take.
type compilingStore struct {
	*memorystore.Store
	compiles, takes int
}

func (c *compilingStore) Compile(alg ratelimit.Algorithm, l ratelimit.Limit) (ratelimit.CompiledLimit, error) {
	c.compiles++
	return c.Store.Compile(alg, l)
}

func (c *compilingStore) Take(ctx context.Context, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	c.takes++
	return c.Store.Take(ctx, key, alg, l, n)
}

func TestLimiterCompilesItsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cs := &compilingStore{Store: newStore(t)}
		lim := ratelimit.New(cs, ratelimit.FixedWindow, ratelimit.PerMinute(2))
		for i, want := range []bool{true, true, false} {
			if r, err := lim.Allow(ctx, "k"); err != nil || r.Allowed != want {
				t.Fatalf("call %d: Allow = %v, %v; want %v", i, r.Allowed, err, want)
			}
		}
		lim.SetLimit(ratelimit.PerMinute(3))
		if r, err := lim.AllowN(ctx, "k", 1); err != nil || !r.Allowed || r.Limit.Rate != 3 {
			t.Errorf("after raising the limit to 3: AllowN = %+v, %v; want allowed under 3 per minute", r, err)
		}
		if cs.compiles != 2 || cs.takes != 0 {
			t.Errorf("%d limits compiled, %d calls of Store.Take; want 2 and 0", cs.compiles, cs.takes)
		}
		lim.SetLimit(ratelimit.Limit{})
		if _, err := lim.Allow(ctx, "k"); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("zero limit: %v, want ErrInvalidLimit", err)
		}
		if cs.takes != 1 {
			t.Errorf("a limit that does not compile: %d calls of Store.Take, want 1", cs.takes)
		}
	})
}
