package memorystore

import (
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// TestFloodKeepsExhaustedKey floods a full store with fresh keys of a longer rule, each
// taking one unit, and checks that a key over its limit is never reset by the flood: its
// state stays while keys that still have units left are there to be evicted.
func TestFloodKeepsExhaustedKey(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStore(t, &Options{MaxKeys: 1024})
				victim := ratelimit.PerMinute(10)
				for i := range 10 {
					if r, err := s.Take(ctx, "victim", alg, victim, 1); err != nil || !r.Allowed {
						t.Fatalf("victim call %d: Take = %+v, %v; want allowed", i, r, err)
					}
				}
				flood := ratelimit.Limit{Rate: 1000, Period: 24 * time.Hour}
				extra := 0
				for i := range 200_000 {
					if _, err := s.Take(ctx, "flood:"+strconv.Itoa(i), alg, flood, 1); err != nil {
						t.Fatal(err)
					}
					if i%100 == 99 {
						r, err := s.Take(ctx, "victim", alg, victim, 1)
						if err != nil {
							t.Fatal(err)
						}
						if r.Allowed {
							extra++
						}
					}
				}
				if extra != 0 {
					t.Errorf("the exhausted key passed %d more units during a flood of 200,000 keys within its minute, want 0", extra)
				}
			})
		})
	}
}

// TestFloodOfExhaustedKeys floods a full store with keys that exhaust a shorter rule: the
// key over its (longer) limit outlives them, since among keys over their limit the one
// closest to expiry goes first.
func TestFloodOfExhaustedKeys(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newStore(t, &Options{MaxKeys: 1024})
				victim := ratelimit.PerHour(10)
				for range 10 {
					s.Take(ctx, "victim", alg, victim, 1)
				}
				flood := ratelimit.PerSecond(1)
				extra := 0
				for i := range 100_000 {
					if r, err := s.Take(ctx, "flood:"+strconv.Itoa(i), alg, flood, 1); err != nil || !r.Allowed || r.Remaining != 0 {
						t.Fatalf("flood key %d: Take = %+v, %v; want allowed, none remaining", i, r, err)
					}
					if i%100 == 99 {
						if r, _ := s.Take(ctx, "victim", alg, victim, 1); r.Allowed {
							extra++
						}
					}
				}
				if extra != 0 {
					t.Errorf("the exhausted key passed %d more units during a flood of 100,000 exhausted keys, want 0", extra)
				}
			})
		})
	}
}

// TestLogBytesBounded fills a store with SlidingWindowLog keys that each record hundreds
// of instants: the live heap stays within the store's bound, as for the other algorithms.
func TestLogBytesBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys, keys, hits = 4096, 2000, 300
		before := liveHeap()
		s := New(&Options{MaxKeys: maxKeys})
		defer s.Close()
		lim := ratelimit.PerMinute(1000)
		names := make([]string, keys)
		for i := range names {
			names[i] = "user:" + strconv.Itoa(i)
		}
		for range hits {
			for _, k := range names {
				if _, err := s.Take(ctx, k, ratelimit.SlidingWindowLog, lim, 1); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Millisecond) // each round at its own instant: one log entry per key per round
		}
		grown := int64(liveHeap()) - int64(before) - keys*int64(len("user:1234")+16)
		runtime.KeepAlive(names)
		t.Logf("%d keys × %d instants, MaxKeys %d: live heap grew by %d B (%.0f B per MaxKeys), %d keys held",
			keys, hits, maxKeys, grown, float64(grown)/maxKeys, s.Len())
		if limit := int64(maxKeys * 80); grown > limit {
			t.Errorf("live heap grew by %d B, want at most %d (80 B per key of MaxKeys)", grown, limit)
		}
	})
}

// TestSweepCompactsLogs checks that the sweeper gives back the room of a log whose
// instants have mostly expired, and counts it no more against the bound.
func TestSweepCompactsLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStore(t, &Options{SweepInterval: time.Minute})
		lim := ratelimit.PerMinute(1000)
		for range 500 {
			s.Take(ctx, "k", ratelimit.SlidingWindowLog, lim, 1)
			time.Sleep(time.Millisecond)
		}
		k := s.id("k", ratelimit.SlidingWindowLog)
		sh := s.shard(k)
		units := func() int { sh.mu.Lock(); defer sh.mu.Unlock(); return sh.logUnits }
		before := units()
		// One unit every 10 s keeps the key alive while the burst expires.
		for range 12 {
			time.Sleep(10 * time.Second)
			s.Take(ctx, "k", ratelimit.SlidingWindowLog, lim, 1)
		}
		synctest.Wait()
		if after := units(); after >= before/4 || after < 1 {
			t.Errorf("log counts %d keys after its burst expired and a sweep ran, %d before; want 1 to %d", after, before, before/4-1)
		}
		if r, _ := s.Take(ctx, "k", ratelimit.SlidingWindowLog, lim, 0); r.Remaining != 1000-6 {
			t.Errorf("after compaction: Remaining = %d, want %d", r.Remaining, 1000-6)
		}
	})
}
