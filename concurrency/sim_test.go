package concurrency

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// pool is a simulated server: workers serve one request at a time for service each;
// requests beyond the workers queue for one, in arrival order.
type pool struct {
	mu      sync.Mutex
	workers chan struct{}
	service time.Duration
}

func newPool(workers int, service time.Duration) *pool {
	return &pool{workers: make(chan struct{}, workers), service: service}
}

// resize changes the number of workers; requests already served keep theirs.
func (p *pool) resize(workers int) {
	p.mu.Lock()
	p.workers = make(chan struct{}, workers)
	p.mu.Unlock()
}

func (p *pool) serve() {
	p.mu.Lock()
	w := p.workers
	p.mu.Unlock()
	w <- struct{}{}
	time.Sleep(p.service)
	<-w
}

// trace records the limit at every window, for assertions on its course.
type trace struct {
	at     []time.Duration
	limits []int
}

// run drives l with clients closed-loop callers for d: each acquires, is served by
// serve, releases with its outcome, and after a denial waits backoff. It samples the
// limit every 10 ms. It must run inside a synctest bubble.
func run(l *Limiter, clients int, d, backoff time.Duration, serve func() Outcome, tr *trace, admitted *int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				tok, err := l.Acquire(ctx)
				if err != nil {
					return
				}
				if !tok.Allowed() {
					time.Sleep(backoff)
					continue
				}
				tok.Release(serve())
				if admitted != nil {
					mu.Lock()
					*admitted++
					mu.Unlock()
				}
			}
		})
	}
	start := time.Now()
	wg.Go(func() {
		for ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			tr.at = append(tr.at, time.Since(start))
			tr.limits = append(tr.limits, l.Limit())
		}
	})
	wg.Wait()
}

// in reports whether every limit recorded from index i on is within [lo, hi].
func (tr *trace) within(from time.Duration, lo, hi int) (bad int, ok bool) {
	for i, at := range tr.at {
		if at >= from && (tr.limits[i] < lo || tr.limits[i] > hi) {
			return tr.limits[i], false
		}
	}
	return 0, true
}

func (tr *trace) at_(d time.Duration) int {
	for i, at := range tr.at {
		if at >= d {
			return tr.limits[i]
		}
	}
	return tr.limits[len(tr.limits)-1]
}

var algorithms = []struct {
	name string
	new  func() Algorithm
}{
	{"vegas", func() Algorithm { return &Vegas{} }},
	{"gradient2", func() Algorithm { return &Gradient2{} }},
	{"aimd", func() Algorithm { return &AIMD{Timeout: 15 * time.Millisecond} }},
}

// TestGrowsUnderHeadroom: a server whose latency does not depend on concurrency lets
// every algorithm grow from its initial limit to its maximum, never beyond.
func TestGrowsUnderHeadroom(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, &Options{Algorithm: alg.new(), InitialLimit: 5, MinLimit: 2, MaxLimit: 60})
				var tr trace
				run(l, 100, 10*time.Second, 5*time.Millisecond, func() Outcome { time.Sleep(10 * time.Millisecond); return Success }, &tr, nil)
				if bad, ok := tr.within(0, 2, 60); !ok {
					t.Errorf("limit %d outside [2, 60]", bad)
				}
				if got := tr.at_(10 * time.Second); got < 55 {
					t.Errorf("limit after 10s of headroom = %d, want at least 55 (max 60); course %v", got, every(tr.limits, 50))
				}
			})
		})
	}
}

func every(xs []int, n int) []int {
	var out []int
	for i := 0; i < len(xs); i += n {
		out = append(out, xs[i])
	}
	return out
}

// TestBacksOffOnRisingLatency: against a pool of 20 workers, where latency rises with
// every request beyond 20 in flight, each algorithm stops well short of its maximum, and
// comes down when the pool shrinks to 10. The ranges are the settled limits measured for
// each algorithm with its defaults, with a margin; see the package documentation for why
// each settles where it does.
func TestBacksOffOnRisingLatency(t *testing.T) {
	ranges := map[string][2][2]int{ // knee 20, knee 10: [lo, hi]
		"vegas":     {{20, 30}, {10, 20}},
		"gradient2": {{20, 45}, {10, 35}},
		"aimd":      {{20, 35}, {8, 20}},
	}
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(20, 10*time.Millisecond)
				l := mustNew(t, &Options{Algorithm: alg.new(), InitialLimit: 5, MaxLimit: 200})
				var tr trace
				go func() { time.Sleep(10 * time.Second); p.resize(10) }()
				run(l, 100, 20*time.Second, 5*time.Millisecond, func() Outcome { p.serve(); return Success }, &tr, nil)
				r := ranges[alg.name]
				if bad, ok := tr.within(5*time.Second, r[0][0], r[0][1]); !ok && tr.at_(10*time.Second) == bad {
					t.Errorf("knee 20: limit %d at 10s outside %v", bad, r[0])
				}
				if bad, ok := tr.within(5*time.Second, 1, r[0][1]); !ok {
					t.Errorf("knee 20: limit %d after 5s above %d; course %v", bad, r[0][1], every(tr.limits, 50))
				}
				if bad, ok := tr.within(15*time.Second, r[1][0], r[1][1]); !ok {
					t.Errorf("knee 10: limit %d after 15s outside %v; course %v", bad, r[1], every(tr.limits, 50))
				}
				if before, after := tr.at_(10*time.Second), tr.at_(12*time.Second); after >= before {
					t.Errorf("limit %d 2s after the pool shrank, %d before: want lower", after, before)
				}
			})
		})
	}
}

// TestBacksOffOnDrops: a server that fails the requests beyond 30 in flight, at no cost
// in latency, keeps every algorithm near 30; a server that fails everything drives each
// to its minimum.
func TestBacksOffOnDrops(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, &Options{Algorithm: alg.new(), InitialLimit: 5, MinLimit: 3, MaxLimit: 200})
				var tr trace
				run(l, 100, 10*time.Second, 5*time.Millisecond, func() Outcome {
					n := l.InFlight()
					time.Sleep(10 * time.Millisecond)
					if n > 30 {
						return Dropped
					}
					return Success
				}, &tr, nil)
				if bad, ok := tr.within(3*time.Second, 3, 45); !ok {
					t.Errorf("limit %d after 3s outside [3, 45]; course %v", bad, every(tr.limits, 50))
				}
				if got := tr.at_(10 * time.Second); got < 15 {
					t.Errorf("limit at 10s = %d, want at least 15: drops begin at 30", got)
				}

				var all trace
				run(l, 100, 10*time.Second, 5*time.Millisecond, func() Outcome { time.Sleep(10 * time.Millisecond); return Dropped }, &all, nil)
				if got := all.at_(10 * time.Second); got != 3 {
					t.Errorf("limit after 10s of drops only = %d, want the minimum 3; course %v", got, every(all.limits, 50))
				}
			})
		})
	}
}
