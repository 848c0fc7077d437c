package redisstore

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// The local ledger runs in a synctest bubble: time.Sleep moves a fake clock at once, so
// every instant below is exact to the nanosecond. The round trips to Redis cannot run in
// a bubble (network I/O is not durably blocking); the tests against a real redis-server
// cover them.

// ledgerClock returns the bubble's clock as the store reads it: nanoseconds since start.
func ledgerClock() func() int64 {
	base := time.Now()
	return func() int64 { return int64(time.Since(base)) }
}

// TestLedgerSpend: a lease spends the units granted, asks for a refill once it is below
// half its size, and never spends a unit at or after its window's end.
func TestLedgerSpend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := ledgerClock()
		e := &lease{k: leaseKey{"k", ratelimit.FixedWindow}, p: algo.Params{Rate: 100, Cap: 100}, chunk: 10}
		if allowed, ask := e.spend(now(), 1); allowed || !ask {
			t.Fatalf("empty lease: allowed %v, ask %v; want a denial asking for a refill", allowed, ask)
		}
		if allowed, ask := e.spend(now(), 3); allowed || ask || e.want != 3 {
			t.Fatalf("refill pending: allowed %v, ask %v, want %d; want a denial, no second ask, want 3", allowed, ask, e.want)
		}
		sent := now()
		time.Sleep(300 * time.Millisecond) // the round trip
		// The window had 1s left when the script ran, after sent: the lease ends at sent+1s.
		e.record(grant{granted: 10, left: 90, start: 7, until: 1_000_000}, 10, sent, now(), int64(100*time.Millisecond))
		if e.pending || e.units != 10 || e.expires != sent+int64(time.Second) {
			t.Fatalf("after the grant: %+v; want 10 units until sent+1s", e)
		}
		for i := 1; i <= 10; i++ {
			allowed, ask := e.spend(now(), 1)
			if !allowed {
				t.Fatalf("unit %d of 10 denied", i)
			}
			if wantAsk := i == 6; ask != wantAsk { // 4 left: below half of 10
				t.Fatalf("unit %d: ask %v, want %v", i, ask, wantAsk)
			}
		}
		e.record(grant{granted: 5, left: 85, start: 7, until: 700_000}, 5, now(), now(), int64(100*time.Millisecond))
		end := e.expires
		time.Sleep(time.Duration(end-now()) - 1)
		if allowed, _ := e.spend(now(), 1); !allowed {
			t.Fatal("denied 1ns before the window's end")
		}
		time.Sleep(time.Nanosecond)
		if allowed, _ := e.spend(now(), 1); allowed || e.unspent(now()) != 0 {
			t.Fatal("a unit spent at the window's end")
		}
		d := e.decision(now(), false, int64(2*time.Millisecond))
		if d.RetryAfter != 2*time.Millisecond.Nanoseconds() || d.ResetAfter != 0 || d.Remaining != 85 {
			t.Errorf("decision after the window: %+v; want RetryAfter one round trip, Remaining what Redis had left", d)
		}
	})
}

// TestLedgerExhausted: when Redis has nothing left, a fixed window asks again only when
// its window ends, and tells the caller so; a failed refill waits one interval.
func TestLedgerExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := ledgerClock()
		interval := int64(100 * time.Millisecond)
		e := &lease{k: leaseKey{"k", ratelimit.FixedWindow}, p: algo.Params{Rate: 10, Cap: 10}, chunk: 4}
		e.spend(now(), 1)
		e.record(grant{granted: 2, left: 0, start: 1, until: 400_000}, 4, now(), now(), interval)
		e.spend(now(), 1)
		e.spend(now(), 1)
		time.Sleep(100 * time.Millisecond)
		allowed, ask := e.spend(now(), 1)
		if allowed || ask {
			t.Fatalf("nothing left in Redis: allowed %v, ask %v; want a denial without a refill", allowed, ask)
		}
		if d := e.decision(now(), false, 0); d.RetryAfter != int64(300*time.Millisecond) {
			t.Errorf("RetryAfter %v, want the 300ms left in the window", time.Duration(d.RetryAfter))
		}
		time.Sleep(300 * time.Millisecond)
		if _, ask := e.spend(now(), 1); !ask {
			t.Error("no refill asked for at the window's end")
		}
		e.failed(now(), interval)
		time.Sleep(time.Duration(interval) - 1)
		if _, ask := e.spend(now(), 1); ask {
			t.Error("a refill asked for before the interval after a failure")
		}
		time.Sleep(time.Nanosecond)
		if _, ask := e.spend(now(), 1); !ask {
			t.Error("no refill asked for one interval after a failure")
		}
	})
}

// TestLedgerResize: a lease that lasted less than one interval doubles, up to the most a
// process holds; one that lasted more than four halves, down to what is wanted.
func TestLedgerResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := ledgerClock()
		interval := int64(100 * time.Millisecond)
		e := &lease{k: leaseKey{"k", ratelimit.SlidingWindowCounter}, p: algo.Params{Rate: 1000, Cap: 1000}, chunk: 8}
		time.Sleep(time.Millisecond) // the store's clock starts before any grant
		if got := e.resize(now(), interval, 50); got != 8 || e.chunk != 8 {
			t.Fatalf("first refill asks %d (chunk %d), want the initial 8", got, e.chunk)
		}
		e.record(grant{granted: 8, left: 992, start: 1, until: 900_000}, 8, now(), now(), interval)
		time.Sleep(time.Duration(interval) - 1)
		e.units = 0
		if got := e.resize(now(), interval, 50); got != 16 {
			t.Errorf("a lease that lasted under one interval: asks %d, want 16", got)
		}
		for range 5 {
			e.resize(now(), interval, 50)
		}
		if e.chunk != 50 {
			t.Errorf("chunk %d after repeated doubling, want the most, 50", e.chunk)
		}
		e.since = now()
		time.Sleep(4*time.Duration(interval) + 1)
		e.want = 30
		if got := e.resize(now(), interval, 50); e.chunk != 30 || got != 30 {
			t.Errorf("a lease that lasted over four intervals: chunk %d, asks %d; want halved to 25, raised to the 30 wanted", e.chunk, got)
		}
	})
}
