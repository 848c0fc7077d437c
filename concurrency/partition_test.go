package concurrency

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestPartitionSharesHoldUnderOverload: with a limit of 10 shared 70/30, a flood of batch
// requests leaves interactive requests their 7 slots, and both partitions overloaded get
// their shares of the throughput.
func TestPartitionSharesHoldUnderOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, &Options{Algorithm: Fixed(10), InitialLimit: 10, Partitions: map[string]float64{"interactive": 0.7, "batch": 0.3}})
		if got := l.Partition("interactive").Share(); got != 7 {
			t.Fatalf("interactive share = %d, want 7", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var mu sync.Mutex
		served := map[string]int{}
		denied := map[string]int{}
		inFlight, maxInFlight := 0, 0
		var wg sync.WaitGroup
		client := func(name string) {
			p := l.Partition(name)
			for ctx.Err() == nil {
				tok, _ := p.Acquire(ctx)
				if !tok.Allowed() {
					mu.Lock()
					denied[name]++
					mu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				}
				// The limiter's own count also holds, for an instant, the attempts of
				// callers being refused: count the admitted requests here.
				mu.Lock()
				inFlight++
				maxInFlight = max(maxInFlight, inFlight)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				mu.Lock()
				inFlight--
				served[name]++
				mu.Unlock()
				tok.Release(Success)
			}
		}
		// Batch floods first, then interactive joins, overloaded too.
		for range 100 {
			wg.Go(func() { client("batch") })
		}
		time.Sleep(time.Second)
		mu.Lock()
		if served["batch"] < 900 {
			t.Errorf("batch alone served %d in 1s, want ~1000: it may use the whole limit", served["batch"])
		}
		clear(served)
		mu.Unlock()
		for range 20 {
			wg.Go(func() { client("interactive") })
		}
		wg.Wait()
		total := served["interactive"] + served["batch"]
		share := float64(served["interactive"]) / float64(total)
		if share < 0.65 || share > 0.75 {
			t.Errorf("interactive served %d of %d (%.2f), want 0.7 ± 0.05", served["interactive"], total, share)
		}
		if maxInFlight > 10+7 {
			t.Errorf("in flight reached %d, want at most the limit plus the interactive share", maxInFlight)
		}
		if total < 3600 {
			t.Errorf("served %d in 4s at 10 × 10ms, want ~4000", total)
		}
	})
}

// TestPartitionLightLoadNeverDenied: a partition that stays under its share is never
// denied, whatever the others do.
func TestPartitionLightLoadNeverDenied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := mustNew(t, &Options{Algorithm: Fixed(10), InitialLimit: 10, Partitions: map[string]float64{"interactive": 0.5}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				p := l.Partition("unknown") // no share: the rest of the limit
				for ctx.Err() == nil {
					if tok, _ := p.Acquire(ctx); tok.Allowed() {
						time.Sleep(10 * time.Millisecond)
						tok.Release(Success)
					} else {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		var denied, served int
		var mu sync.Mutex
		for range 5 {
			wg.Go(func() {
				p := l.Partition("interactive")
				for ctx.Err() == nil {
					tok, _ := p.Acquire(ctx)
					mu.Lock()
					if tok.Allowed() {
						served++
					} else {
						denied++
					}
					mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					tok.Release(Success)
				}
			})
		}
		wg.Wait()
		if denied != 0 || served < 900 {
			t.Errorf("interactive under its share: %d denied, %d served, want 0 denied, ~1000 served", denied, served)
		}
	})
}
