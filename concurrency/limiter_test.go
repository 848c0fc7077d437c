package concurrency

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

func mustNew(t *testing.T, o *Options) *Limiter {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{MinLimit: 10, MaxLimit: 5},
		{MinLimit: -1},
		{MaxQueue: -1},
		{Window: -time.Second},
		{Partitions: map[string]float64{"a": 0}},
		{Partitions: map[string]float64{"a": 1.5}},
		{Partitions: map[string]float64{"a": 0.7, "b": 0.4}},
	} {
		if _, err := New(&o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%+v) error = %v, want ErrInvalidOptions", o, err)
		}
	}
	l := mustNew(t, nil)
	if got := l.Limit(); got != DefaultInitialLimit {
		t.Errorf("default limit = %d, want %d", got, DefaultInitialLimit)
	}
}

func TestAcquireUpToTheLimit(t *testing.T) {
	ctx := context.Background()
	l := mustNew(t, &Options{Algorithm: Fixed(3), InitialLimit: 3})
	var held []Token
	for i := range 3 {
		tok, err := l.Acquire(ctx)
		if err != nil || !tok.Allowed() || tok.Reason() != Admitted {
			t.Fatalf("Acquire %d = %v, %v, want admitted", i, tok.Reason(), err)
		}
		held = append(held, tok)
	}
	tok, err := l.Acquire(ctx)
	if err != nil || tok.Allowed() || tok.Reason() != LimitReached {
		t.Fatalf("Acquire over the limit = %v, %v, want limit_reached", tok.Reason(), err)
	}
	tok.Release(Success) // a denied token: no effect
	if got := l.InFlight(); got != 3 {
		t.Fatalf("InFlight = %d, want 3", got)
	}
	held[0].Release(Ignored)
	if tok, _ := l.Acquire(ctx); !tok.Allowed() {
		t.Fatalf("Acquire after a release = %v, want admitted", tok.Reason())
	}
	var zero Token
	zero.Release(Success)
	if zero.Allowed() || zero.Reason() != 0 {
		t.Errorf("zero Token: Allowed %v Reason %v", zero.Allowed(), zero.Reason())
	}
	if s := l.Stats(); s.Rejected != 1 || s.InFlight != 3 || s.Limit != 3 {
		t.Errorf("Stats = %+v, want 1 rejected, 3 in flight, limit 3", s)
	}
}

func TestQueueServesNewestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		l := mustNew(t, &Options{Algorithm: Fixed(1), InitialLimit: 1, MaxQueue: 2})
		first, _ := l.Acquire(ctx)
		order := make(chan string, 2)
		for _, name := range []string{"older", "newer"} {
			go func() {
				tok, err := l.Acquire(ctx)
				if err != nil || !tok.Allowed() {
					t.Errorf("%s: Acquire = %v, %v", name, tok.Reason(), err)
					return
				}
				order <- name
				time.Sleep(time.Millisecond)
				tok.Release(Success)
			}()
			synctest.Wait()
		}
		if s := l.Stats(); s.Queued != 2 {
			t.Fatalf("Queued = %d, want 2", s.Queued)
		}
		if tok, _ := l.Acquire(ctx); tok.Reason() != QueueFull {
			t.Fatalf("Acquire with a full queue = %v, want queue_full", tok.Reason())
		}
		first.Release(Success)
		if a, b := <-order, <-order; a != "newer" || b != "older" {
			t.Errorf("served %s then %s, want newer then older", a, b)
		}
		time.Sleep(time.Second)
		if n := l.InFlight(); n != 0 {
			t.Errorf("InFlight = %d after all released, want 0", n)
		}
	})
}

func TestQueueTimeoutAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, &Options{Algorithm: Fixed(1), InitialLimit: 1, MaxQueue: 4, MaxWait: 50 * time.Millisecond})
		held, _ := l.Acquire(context.Background())
		start := time.Now()
		tok, err := l.Acquire(context.Background())
		if err != nil || tok.Reason() != QueueTimeout || time.Since(start) != 50*time.Millisecond {
			t.Errorf("Acquire = %v, %v after %v, want queue_timeout after 50ms", tok.Reason(), err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		tok, err = l.Acquire(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || tok.Allowed() {
			t.Errorf("Acquire with an ending context = %v, %v, want DeadlineExceeded", tok.Reason(), err)
		}
		if s := l.Stats(); s.Queued != 0 || s.InFlight != 1 {
			t.Errorf("Stats = %+v, want an empty queue and 1 in flight", s)
		}
		held.Release(Success)
		if tok, _ := l.Acquire(context.Background()); !tok.Allowed() {
			t.Errorf("Acquire after all left = %v", tok.Reason())
		}
	})
}

// TestAcquireReleaseAllocatesNothing locks in the fast path, including a window closing on
// every release, and a partition.
func TestAcquireReleaseAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []Algorithm{Fixed(100), &AIMD{}, &Gradient2{}, &Vegas{}} {
		l := mustNew(t, &Options{Algorithm: alg, Window: time.Nanosecond, MinSamples: 1, Partitions: map[string]float64{"a": 0.5}})
		p := l.Partition("a")
		n := testing.AllocsPerRun(1000, func() {
			t1, _ := l.Acquire(ctx)
			t2, _ := p.Acquire(ctx)
			t1.Release(Success)
			t2.Release(Dropped)
		})
		if n != 0 {
			t.Errorf("%T: %v allocations per Acquire+Release, want 0", alg, n)
		}
	}
}

func TestWindowsCloseOncePerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		alg := algFunc(func(limit float64, s Sample) float64 { calls++; return limit })
		l := mustNew(t, &Options{Algorithm: alg, Window: 100 * time.Millisecond, MinSamples: 5})
		ctx := context.Background()
		for range 1000 { // 1 s of requests of 1 ms each
			tok, _ := l.Acquire(ctx)
			time.Sleep(time.Millisecond)
			tok.Release(Success)
		}
		if calls < 9 || calls > 10 {
			t.Errorf("Update called %d times in 1s of 100ms windows, want 9 or 10", calls)
		}
		last := l.Stats().Last
		if last.Successes < 99 || last.Successes > 101 || last.AvgRTT != time.Millisecond || last.MinRTT != time.Millisecond || last.MaxInFlight != 1 {
			t.Errorf("last sample = %+v, want ~100 successes of 1ms, 1 in flight", last)
		}
		// A quiet window with too few samples stays open.
		calls = 0
		for range 4 {
			tok, _ := l.Acquire(ctx)
			time.Sleep(time.Second)
			tok.Release(Success)
		}
		if calls != 0 {
			t.Errorf("Update called %d times with 4 samples in a window, want 0", calls)
		}
	})
}

type algFunc func(float64, Sample) float64

func (f algFunc) Update(limit float64, s Sample) float64 { return f(limit, s) }

func TestLimitStaysInBounds(t *testing.T) {
	ctx := context.Background()
	up := algFunc(func(float64, Sample) float64 { return 1e9 })
	down := algFunc(func(float64, Sample) float64 { return -5 })
	nan := algFunc(func(float64, Sample) float64 { return 0 / zero })
	for _, c := range []struct {
		alg  Algorithm
		want int
	}{{up, 50}, {down, 3}, {nan, 20}} {
		l := mustNew(t, &Options{Algorithm: c.alg, MinLimit: 3, MaxLimit: 50, Window: time.Nanosecond, MinSamples: 1})
		for range 3 {
			tok, _ := l.Acquire(ctx)
			tok.Release(Success)
		}
		if got := l.Limit(); got != c.want {
			t.Errorf("limit after updates to %v = %d, want %d", c.alg.Update(20, Sample{}), got, c.want)
		}
	}
}

var zero float64

func TestObserverHearsAcquires(t *testing.T) {
	var events []ratelimit.Event
	obs := ratelimit.ObserverFunc(func(e ratelimit.Event) { events = append(events, e) })
	l := mustNew(t, &Options{Name: "api", Algorithm: Fixed(1), InitialLimit: 1, Observer: obs, Partitions: map[string]float64{"batch": 1}})
	ctx := context.Background()
	a, _ := l.Partition("batch").Acquire(ctx)
	l.Acquire(ctx)
	a.Release(Success)
	if len(events) != 2 || events[0].Rule != "api" || events[0].KeyClass != "batch" || events[0].Outcome != ratelimit.Allowed ||
		events[1].KeyClass != "" || events[1].Outcome != ratelimit.Denied {
		t.Errorf("events = %+v, want api/batch allowed, then api denied", events)
	}
}
