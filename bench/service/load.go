package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// outcome is what one ShouldRateLimit call came back with.
type outcome int

const (
	outOK      outcome = iota // overall_code OK
	outOver                   // overall_code OVER_LIMIT
	outUnknown                // any other overall_code (UNKNOWN)
	outError                  // the call failed (transport error, deadline, gRPC status)
)

// caller makes one call on behalf of goroutine worker for the user with
// index user and reports its outcome. It must be safe for concurrent use.
type caller func(ctx context.Context, worker, user int) (outcome, error)

// plan is one concurrency level of a run.
type plan struct {
	Concurrency int
	Warmup      time.Duration // calls started before this are not counted
	Duration    time.Duration // measured window after the warm-up
	CallTimeout time.Duration // per-call deadline
	Users       int           // user indexes are drawn uniformly from [0, Users)
	Seed        uint64
}

// levelResult is what one concurrency level measured. Only calls that
// started inside the measured window count, so Calls/Window is the rate.
type levelResult struct {
	Concurrency int
	Window      time.Duration
	Calls       uint64 // every counted call, whatever its outcome
	OK          uint64
	Over        uint64
	Unknown     uint64
	Errors      uint64
	FirstError  string
	Latency     *histogram // every counted call that returned a response
}

func (r *levelResult) rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Window.Seconds()
}

// worker is one caller goroutine's private tally, merged after the run.
type worker struct {
	hist                       histogram
	calls, ok, over, unk, errs uint64
	firstErr                   error
}

// runLevel runs p.Concurrency goroutines, each making one call at a time
// back to back, for p.Warmup+p.Duration. It returns once every goroutine has
// finished its last call, which is bounded by the per-call deadline.
func runLevel(ctx context.Context, p plan, call caller) *levelResult {
	if p.Concurrency < 1 {
		p.Concurrency = 1
	}
	if p.Users < 1 {
		p.Users = 1
	}
	start := time.Now()
	measureFrom := start.Add(p.Warmup)
	measureTo := measureFrom.Add(p.Duration)

	workers := make([]*worker, p.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := new(worker)
		workers[i] = w
		wg.Add(1)
		go func(id int, seed uint64) {
			defer wg.Done()
			rng := newRNG(seed)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(measureTo) {
					return
				}
				user := int(rng.next() % uint64(p.Users))
				cctx, cancel := context.WithTimeout(ctx, p.CallTimeout)
				out, err := call(cctx, id, user)
				cancel()
				d := time.Since(t0)
				if t0.Before(measureFrom) {
					continue
				}
				w.calls++
				switch out {
				case outOK:
					w.ok++
				case outOver:
					w.over++
				case outUnknown:
					w.unk++
				default:
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.hist.record(d)
			}
		}(i, p.Seed+uint64(i)*0x9e3779b97f4a7c15)
	}
	wg.Wait()

	res := &levelResult{Concurrency: p.Concurrency, Window: p.Duration, Latency: new(histogram)}
	for _, w := range workers {
		res.Calls += w.calls
		res.OK += w.ok
		res.Over += w.over
		res.Unknown += w.unk
		res.Errors += w.errs
		res.Latency.merge(&w.hist)
		if res.FirstError == "" && w.firstErr != nil {
			res.FirstError = w.firstErr.Error()
		}
	}
	if ctx.Err() != nil && res.FirstError == "" {
		res.FirstError = fmt.Sprintf("run interrupted: %v", ctx.Err())
	}
	return res
}

// rng is a small splitmix64 generator: each goroutine owns one, so picking a
// user costs no lock and the sequence is reproducible from the seed.
type rng struct{ s uint64 }

func newRNG(seed uint64) *rng { return &rng{s: seed} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
