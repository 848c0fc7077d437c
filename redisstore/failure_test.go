package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// margin is how late a call may return after the store's timeout: generous, for -race on
// a loaded machine, where a descheduled caller returns late, and still under the clients'
// own read and dial timeouts (3 s and more), so that a call the store's timeout did not
// end fails the test.
const margin = 2 * time.Second

// load runs workers calling Take on their own keys until stop is closed, and records the
// slowest call, errors, and answers.
type load struct {
	slowest atomic.Int64
	calls   atomic.Int64
	allowed atomic.Int64
	errs    atomic.Int64
	lastErr atomic.Value
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLoad(s *Store, workers int, alg ratelimit.Algorithm, l ratelimit.Limit) *load {
	ld := &load{stop: make(chan struct{})}
	for w := range workers {
		ld.wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				t0 := time.Now()
				r, err := s.Take(ctx, fmt.Sprintf("w%d-%d", w, i%64), alg, l, 1)
				d := time.Since(t0)
				for {
					old := ld.slowest.Load()
					if int64(d) <= old || ld.slowest.CompareAndSwap(old, int64(d)) {
						break
					}
				}
				ld.calls.Add(1)
				if err != nil {
					ld.errs.Add(1)
					ld.lastErr.Store(err)
				} else if r.Allowed {
					ld.allowed.Add(1)
				}
			}
		})
	}
	return ld
}

func (ld *load) finish() { close(ld.stop); ld.wg.Wait() }

// pollUntil polls cond every 5ms until it holds, failing t after timeout: a bound on the
// wait, generous for loaded machines, not a measure of how fast cond comes to hold.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKillRestart kills redis-server under load and brings it back on the same port: every
// call returns within the timeout plus a margin, with a policy answer and no error while
// Redis is down, the breaker opens, and the store recovers by itself.
func TestKillRestart(t *testing.T) {
	// Not parallel: its load would disturb the timing of the parallel tests.
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	var hookCalls atomic.Int64
	opts := &Options{
		Timeout: 100 * time.Millisecond, BreakerThreshold: 5, BreakerCooldown: 200 * time.Millisecond,
		Policy: ratelimit.FailLocal, OnError: func(error) { hookCalls.Add(1) },
	}
	s := newStoreOn(t, c, opts)
	ld := startLoad(s, 8, ratelimit.TokenBucket, ratelimit.PerSecond(1000))
	defer ld.finish()

	pollUntil(t, 30*time.Second, "calls before the kill", func() bool { return ld.calls.Load() > 100 })
	srv.Kill()
	pollUntil(t, 30*time.Second, "the breaker to open", func() bool { return s.Stats().BreakerOpen })
	before := ld.calls.Load()
	pollUntil(t, 30*time.Second, "policy answers", func() bool { return ld.calls.Load() > before+1000 })
	if n := ld.errs.Load(); n != 0 {
		t.Fatalf("%d calls returned errors under ratelimit.FailLocal, last: %v", n, ld.lastErr.Load())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 30*time.Second, "the store to recover", func() bool {
		return !s.Stats().BreakerOpen && redisAnswers(s)
	})
	ld.finish()
	ld.stop = make(chan struct{}) // finish is deferred again

	st := s.Stats()
	t.Logf("stats %+v, slowest call %v, hook calls %d", st, time.Duration(ld.slowest.Load()), hookCalls.Load())
	if slowest := time.Duration(ld.slowest.Load()); slowest > opts.Timeout+margin {
		t.Errorf("slowest call took %v, want ≤ %v + %v", slowest, opts.Timeout, margin)
	}
	if st.Failures == 0 || st.PolicyAnswers == 0 || st.BreakerOpens == 0 || hookCalls.Load() == 0 {
		t.Errorf("failures not observable: %+v, hook calls %d", st, hookCalls.Load())
	}
	if ld.errs.Load() != 0 {
		t.Errorf("%d calls returned errors, last: %v", ld.errs.Load(), ld.lastErr.Load())
	}
}

// redisAnswers reports whether a Take on s is answered by Redis rather than by policy.
func redisAnswers(s *Store) bool {
	before := s.Stats().PolicyAnswers
	_, err := s.Take(context.Background(), "probe", ratelimit.GCRA, ratelimit.PerSecond(1000000), 1)
	return err == nil && s.Stats().PolicyAnswers == before
}

// TestHungServer stops the server's process (SIGSTOP): connections stay open and nothing
// answers. Calls must return within the timeout plus a margin, and the breaker must then
// answer at once.
func TestHungServer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	opts := &Options{Timeout: 50 * time.Millisecond, BreakerThreshold: 3, BreakerCooldown: time.Hour, Policy: ratelimit.FailOpen}
	s := newStoreOn(t, c, opts)
	ctx := context.Background()
	l := ratelimit.PerSecond(10)
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	for i := 0; i < 3; i++ {
		t0 := time.Now()
		r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1)
		if d := time.Since(t0); d > opts.Timeout+margin {
			t.Errorf("call %d took %v with the server hung, want ≤ %v + %v", i, d, opts.Timeout, margin)
		}
		if err != nil || !r.Allowed {
			t.Fatalf("call %d under ratelimit.FailOpen = %+v, %v; want allowed, nil", i, r, err)
		}
	}
	if !s.Stats().BreakerOpen {
		t.Fatalf("breaker closed after %d timeouts: %+v", opts.BreakerThreshold, s.Stats())
	}
	// Open breaker: answers in microseconds. Timed with a wide margin; the benchmark
	// BenchmarkBreakerOpen measures it.
	t0 := time.Now()
	for i := 0; i < 1000; i++ {
		if r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1); err != nil || !r.Allowed {
			t.Fatalf("open breaker answer = %+v, %v", r, err)
		}
	}
	if d := time.Since(t0); d > 200*time.Millisecond {
		t.Errorf("1000 answers with the breaker open took %v", d)
	}
}

// TestPolicies checks each policy's answer while the breaker is open.
func TestPolicies(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	srv.Kill() // a port nobody listens on: every dial is refused
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 4}
	for _, p := range []ratelimit.FailPolicy{ratelimit.FailLocal, ratelimit.FailOpen, ratelimit.FailClosed, ratelimit.FailError} {
		t.Run(p.String(), func(t *testing.T) {
			var hooked []error
			var mu sync.Mutex
			s := newStoreOn(t, newClient(t, srv.Addr()), &Options{
				Policy: p, BreakerThreshold: 2, BreakerCooldown: time.Hour, MaxRetries: -1,
				OnError: func(err error) { mu.Lock(); hooked = append(hooked, err); mu.Unlock() },
			})
			for i := 0; i < 6; i++ {
				r, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1)
				switch p {
				case ratelimit.FailLocal:
					if err != nil || r.Allowed != (i < 4) || r.Remaining != max(0, 3-i) {
						t.Fatalf("call %d = %+v, %v; want the local bucket's answer", i, r, err)
					}
				case ratelimit.FailOpen:
					if err != nil || !r.Allowed || r.Remaining != 3 {
						t.Fatalf("call %d = %+v, %v; want allowed, remaining 3", i, r, err)
					}
				case ratelimit.FailClosed:
					if err != nil || r.Allowed || r.RetryAfter <= 0 {
						t.Fatalf("call %d = %+v, %v; want denied with a RetryAfter", i, r, err)
					}
				case ratelimit.FailError:
					if err == nil {
						t.Fatalf("call %d = %+v, nil; want an error", i, r)
					}
					if i >= 2 && !errors.Is(err, ratelimit.ErrCircuitOpen) {
						t.Fatalf("call %d error %v, want ratelimit.ErrCircuitOpen", i, err)
					}
				}
				if r.Limit != (ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 4}) && p != ratelimit.FailError {
					t.Fatalf("call %d: Limit %+v", i, r.Limit)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hooked) != 6 || !errors.Is(hooked[5], ratelimit.ErrCircuitOpen) {
				t.Fatalf("OnError saw %d errors (%v), want 6, the last ratelimit.ErrCircuitOpen", len(hooked), hooked)
			}
			if st := s.Stats(); st.Failures != 2 || st.PolicyAnswers != 6 || st.BreakerOpens != 1 || !st.BreakerOpen {
				t.Fatalf("Stats = %+v", st)
			}
		})
	}
}

// TestBreakerProbe checks the half-open state: after the cool-down one call probes, and
// a healthy server closes the breaker.
func TestBreakerProbe(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newStoreOn(t, c, &Options{Policy: ratelimit.FailOpen, BreakerThreshold: 1, BreakerCooldown: 50 * time.Millisecond, MaxRetries: -1})
	ctx := context.Background()
	srv.Kill()
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); err != nil {
		t.Fatal(err)
	}
	if !s.Stats().BreakerOpen {
		t.Fatal("breaker not open after a failure at threshold 1")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, 30*time.Second, "the probe to close the breaker", func() bool { return redisAnswers(s) })
	if st := s.Stats(); st.BreakerOpen {
		t.Fatalf("breaker open after a successful probe: %+v", st)
	}
}

// TestCallerContext checks that a caller's ended context is its own error, not a failure
// of Redis.
func TestCallerContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, &Options{Policy: ratelimit.FailOpen})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take with a cancelled context = %v, want context.Canceled", err)
	}
	if st := s.Stats(); st.Failures != 0 || st.PolicyAnswers != 0 {
		t.Fatalf("a cancelled caller counted as a failure: %+v", st)
	}
}
