package memorystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

var ctx = context.Background()

func newStore(t *testing.T, opts *Options) *Store {
	t.Helper()
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

var algorithms = []ratelimit.Algorithm{
	ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA,
}

func TestTakeCountsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, nil)
		for _, alg := range algorithms {
			lim := ratelimit.Limit{Rate: 5, Period: time.Hour}
			for i := range 5 {
				r, err := s.Take(ctx, "k", alg, lim, 1)
				if err != nil || !r.Allowed || r.Remaining != 4-i {
					t.Fatalf("%v call %d: Take = %+v, %v; want allowed, remaining %d", alg, i, r, err, 4-i)
				}
			}
			if r, _ := s.Take(ctx, "k", alg, lim, 1); r.Allowed {
				t.Errorf("%v: sixth Take = allowed, want denied", alg)
			}
		}
	})
}

// TestHotKeyExact runs 64 goroutines against one key: exactly the capacity passes.
func TestHotKeyExact(t *testing.T) {
	s := newStore(t, nil)
	for _, alg := range algorithms {
		lim := ratelimit.Limit{Rate: 1000, Period: time.Hour}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for range 50 {
					r, err := s.Take(ctx, "hot", alg, lim, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := allowed.Load(); got != 1000 {
			t.Errorf("%v: %d of 3200 calls allowed, want exactly 1000", alg, got)
		}
	}
}

func TestExpiryReturnsMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, &Options{SweepInterval: time.Second})
		for _, alg := range algorithms {
			for i := range 1000 {
				if _, err := s.Take(ctx, "key"+strconv.Itoa(i), alg, ratelimit.PerSecond(10), 1); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := s.Len(); got != 6000 {
			t.Fatalf("Len() = %d after 6000 keys, want 6000", got)
		}
		// The sliding window counter holds state longest: two periods.
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := s.Len(); got != 0 {
			t.Errorf("Len() = %d after every key expired, want 0", got)
		}
		for i := range s.shards {
			if sh := &s.shards[i]; sh.table.slots != nil || sh.logs != nil {
				t.Errorf("shard %d keeps %d slots and %d logs after every key expired", i, len(sh.table.slots), len(sh.logs))
			}
		}
	})
}

func TestMaxKeysBoundsMemory(t *testing.T) {
	s := newStore(t, &Options{MaxKeys: 1000})
	for _, alg := range []ratelimit.Algorithm{ratelimit.GCRA, ratelimit.SlidingWindowLog} {
		for i := range 100_000 {
			if _, err := s.Take(ctx, fmt.Sprint(alg, i), alg, ratelimit.PerHour(10), 1); err != nil {
				t.Fatal(err)
			}
		}
		// A log of one instant counts as two keys: logUnits.
		want := 1000
		if alg == ratelimit.SlidingWindowLog {
			want = 500
		}
		if got := s.Len(); got > want || got < want*9/10 {
			t.Errorf("%v: Len() = %d after 100,000 keys with MaxKeys 1000, want %d..%d", alg, got, want*9/10, want)
		}
	}
}

func TestEvictsSoonestToExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, &Options{MaxKeys: 1})
		long, short := ratelimit.PerHour(1), ratelimit.PerSecond(1)
		s.Take(ctx, "long", ratelimit.GCRA, long, 1)
		s.Take(ctx, "short", ratelimit.GCRA, short, 1) // evicts "long": the store holds one key
		if r, _ := s.Take(ctx, "long", ratelimit.GCRA, long, 0); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("evicted key: Take = %+v, want full capacity", r)
		}
		s.Take(ctx, "long", ratelimit.GCRA, long, 1) // evicts "short"
		if got := s.Len(); got != 1 {
			t.Errorf("Len() = %d, want 1", got)
		}
	})
}

func TestClose(t *testing.T) {
	s := New(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v, want nil", err)
	}
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Take after Close = %v, want ErrClosed", err)
	}
	if err := s.Reset(ctx, "k", ratelimit.GCRA); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Reset after Close = %v, want ErrClosed", err)
	}
}

func TestTakeDoesNotAllocate(t *testing.T) {
	s := newStore(t, nil)
	for _, alg := range algorithms {
		lim := ratelimit.PerSecond(1_000_000_000)
		s.Take(ctx, "existing", alg, lim, 1)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := s.Take(ctx, "existing", alg, lim, 1); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: Take on an existing key allocates %v times, want 0", alg, allocs)
		}
		c, err := s.Compile(alg, lim)
		if err != nil {
			t.Fatal(err)
		}
		allocs = testing.AllocsPerRun(1000, func() {
			if _, err := c.Take(ctx, "existing", 1); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: a compiled limit's Take on an existing key allocates %v times, want 0", alg, allocs)
		}
	}
}

func TestTableRemoveKeepsProbeRuns(t *testing.T) {
	// Fill a small table, remove entries in random order and check every survivor is found.
	var tb table
	var ids []id
	for i := range 200 {
		k := id{a: uint64(i) * 0x9e3779b97f4a7c15 >> 3 << 3, b: uint32(i)<<1 | 1}
		if tb.full() {
			tb.grow()
		}
		j, found := tb.find(k)
		if found {
			t.Fatalf("id %d found before insertion", i)
		}
		tb.slots[j] = slot{a: k.a, b: k.b}
		tb.count++
		ids = append(ids, k)
	}
	for n, i := range []int{5, 199, 0, 17, 100, 3, 150, 42} {
		j, found := tb.find(ids[i])
		if !found {
			t.Fatalf("removal %d: id %d missing", n, i)
		}
		tb.remove(j)
		ids[i] = id{}
		for m, k := range ids {
			if k == (id{}) {
				continue
			}
			if _, found := tb.find(k); !found {
				t.Fatalf("after removal %d: id %d lost", n, m)
			}
		}
	}
	if tb.count != 192 {
		t.Errorf("count = %d, want 192", tb.count)
	}
}

// TestLimitCache decides under more limits than the store caches, each on its own key, and
// checks that every call is decided under its own limit, an invalid one included.
func TestLimitCache(t *testing.T) {
	s := newStore(t, nil)
	for round := range 2 {
		for i := 1; i <= 3*limitCache; i++ {
			lim := ratelimit.Limit{Rate: i + 1, Period: time.Duration(i) * time.Hour, Burst: i % 3 * (i + 1)}
			r, err := s.Take(ctx, "k"+strconv.Itoa(i), ratelimit.GCRA, lim, 1)
			capacity := lim.Capacity(ratelimit.GCRA)
			if err != nil || !r.Allowed || r.Remaining != capacity-1-round || r.Limit.Burst != capacity {
				t.Fatalf("round %d, limit %v: Take = %+v, %v; want allowed, %d remaining", round, lim, r, err, capacity-1-round)
			}
		}
		if _, err := s.Take(ctx, "k", ratelimit.GCRA, ratelimit.Limit{Rate: 1, Period: -time.Second}, 1); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Fatalf("round %d: invalid limit: err = %v, want ErrInvalidLimit", round, err)
		}
	}
	a, b := ratelimit.PerSecond(1_000_000_000), ratelimit.PerMinute(1_000_000_000)
	allocs := testing.AllocsPerRun(1000, func() {
		s.Take(ctx, "a", ratelimit.GCRA, a, 1)
		s.Take(ctx, "b", ratelimit.TokenBucket, b, 1)
	})
	if allocs != 0 {
		t.Errorf("alternating two limits allocates %v times per pair of calls, want 0", allocs)
	}
}

// TestWaitForLockNotCounted holds a key's shard lock while a call that would be denied at
// the instant it reads the clock waits for it, until the key has refilled: the call is
// decided at the instant it holds the lock, and passes. It runs on the real clock, since
// testing/synctest does not count a goroutine blocked on a sync.Mutex as durably blocked.
// A slow scheduler can only make the test pass without exercising the wait, never fail.
func TestWaitForLockNotCounted(t *testing.T) {
	s := newStore(t, nil)
	lim := ratelimit.Limit{Rate: 1, Period: 100 * time.Millisecond}
	for _, alg := range algorithms {
		if r, err := s.Take(ctx, "k", alg, lim, 1); err != nil || !r.Allowed {
			t.Fatalf("%v: first Take = %+v, %v; want allowed", alg, r, err)
		}
		sh := s.shard(s.id("k", alg))
		sh.mu.Lock()
		done := make(chan ratelimit.Result)
		started := make(chan struct{})
		go func() {
			close(started)
			r, _ := s.Take(ctx, "k", alg, lim, 1)
			done <- r
		}()
		<-started
		// The sliding window counter weighs the previous window too: wait out two periods.
		time.Sleep(2*lim.Period + 20*time.Millisecond)
		sh.mu.Unlock()
		if r := <-done; !r.Allowed {
			t.Errorf("%v: a call that waited for the lock until the key refilled = %+v, want allowed", alg, r)
		}
	}
}
