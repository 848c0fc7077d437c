package failover

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

var (
	errDown   = errors.New("backend down")
	errBroken = errors.New("backend answered nonsense")
	limit     = ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 4}
)

func params(t *testing.T) algo.Params {
	t.Helper()
	p, err := algo.NewParams(ratelimit.GCRA, limit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wrap(err error) error { return errors.Join(errors.New("store: take"), err) }

// take is what a store's Take does with a guard: op is the backend call.
func take(g *Guard, ctx context.Context, p algo.Params, op func(context.Context) error) (ratelimit.Result, error) {
	answer, err := g.Do(ctx, op, wrap)
	switch {
	case answer:
		return g.Answer(ctx, "k", ratelimit.GCRA, limit, 1, p, err)
	case err != nil:
		return ratelimit.Result{}, err
	}
	return algo.Decision{Allowed: true, Remaining: 99}.Result(p), nil
}

func TestPolicies(t *testing.T) {
	p := params(t)
	failing := func(context.Context) error { return errDown }
	for _, pol := range []ratelimit.FailPolicy{ratelimit.FailLocal, ratelimit.FailOpen, ratelimit.FailClosed, ratelimit.FailError} {
		t.Run(pol.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var reported []error
				g := New(Options{Policy: pol, BreakerThreshold: 2, BreakerCooldown: time.Minute, OnError: func(err error) { reported = append(reported, err) }})
				defer g.Close()
				ran := 0
				op := func(ctx context.Context) error { ran++; return failing(ctx) }
				var allowed []bool
				for i := range 6 {
					r, err := take(g, t.Context(), p, op)
					switch {
					case pol == ratelimit.FailError && i < 2 && !errors.Is(err, errDown):
						t.Fatalf("call %d error %v, want errDown", i, err)
					case pol == ratelimit.FailError && i >= 2 && !errors.Is(err, ratelimit.ErrCircuitOpen):
						t.Fatalf("call %d error %v, want ErrCircuitOpen", i, err)
					case pol != ratelimit.FailError && err != nil:
						t.Fatalf("call %d error %v under %v", i, err, pol)
					}
					if pol != ratelimit.FailError && r.Limit != limit {
						t.Fatalf("call %d Limit = %v, want %v", i, r.Limit, limit)
					}
					if pol == ratelimit.FailClosed && r.RetryAfter < DefaultTimeout {
						t.Fatalf("call %d RetryAfter = %v, want at least the timeout", i, r.RetryAfter)
					}
					allowed = append(allowed, r.Allowed)
				}
				if ran != 2 {
					t.Errorf("the backend was tried %d times, want 2 (then the breaker opens)", ran)
				}
				want := map[ratelimit.FailPolicy]string{
					ratelimit.FailLocal:  "[true true true true false false]", // burst 4 in the local store
					ratelimit.FailOpen:   "[true true true true true true]",
					ratelimit.FailClosed: "[false false false false false false]",
					ratelimit.FailError:  "[false false false false false false]",
				}[pol]
				if got := fmtBools(allowed); got != want {
					t.Errorf("allowed = %s, want %s", got, want)
				}
				if len(reported) != 6 || !errors.Is(reported[0], errDown) || !errors.Is(reported[5], ratelimit.ErrCircuitOpen) {
					t.Errorf("OnError saw %v, want 6 errors, first errDown, last ErrCircuitOpen", reported)
				}
				if st := g.Stats(); st != (Stats{Calls: 6, Failures: 2, PolicyAnswers: 6, BreakerOpens: 1, BreakerOpen: true}) {
					t.Errorf("Stats = %+v", st)
				}
			})
		})
	}
}

func fmtBools(b []bool) string {
	s := "["
	for i, x := range b {
		if i > 0 {
			s += " "
		}
		if x {
			s += "true"
		} else {
			s += "false"
		}
	}
	return s + "]"
}

// TestBreakerProbe checks that after the cool-down one call probes the backend while the
// others are answered by policy, and that its outcome closes or reopens the breaker.
func TestBreakerProbe(t *testing.T) {
	p := params(t)
	synctest.Test(t, func(t *testing.T) {
		g := New(Options{Policy: ratelimit.FailOpen, BreakerThreshold: 1, BreakerCooldown: time.Second})
		down := true
		tried := 0
		op := func(context.Context) error {
			tried++
			if down {
				return errDown
			}
			return nil
		}
		take(g, t.Context(), p, op) // opens
		if !g.Stats().BreakerOpen || tried != 1 {
			t.Fatalf("after one failure: %+v, tried %d; want open, 1", g.Stats(), tried)
		}
		take(g, t.Context(), p, op)
		if tried != 1 {
			t.Fatalf("tried %d during the cool-down, want 1", tried)
		}
		time.Sleep(time.Second)
		take(g, t.Context(), p, op) // the probe fails: open again
		if tried != 2 || !g.Stats().BreakerOpen || g.Stats().BreakerOpens != 2 {
			t.Fatalf("after a failed probe: %+v, tried %d", g.Stats(), tried)
		}
		// While a probe is in flight the other calls do not reach the backend.
		time.Sleep(time.Second)
		down = false
		inner := 0
		take(g, t.Context(), p, func(ctx context.Context) error {
			tried++
			_, err := take(g, ctx, p, func(context.Context) error { inner++; return nil })
			return err
		})
		if inner != 0 {
			t.Errorf("a call during the probe reached the backend")
		}
		if st := g.Stats(); st.BreakerOpen {
			t.Errorf("after a successful probe: %+v, want closed", st)
		}
		if r, err := take(g, t.Context(), p, op); err != nil || r.Remaining != 99 {
			t.Errorf("after recovery = %+v, %v; want the backend's answer", r, err)
		}
	})
}

// TestTimeout checks that a backend call is bounded by the timeout, counts as a failure and
// is answered by policy, and that a caller who cancels gets its own error, no failure.
func TestTimeout(t *testing.T) {
	p := params(t)
	synctest.Test(t, func(t *testing.T) {
		g := New(Options{Policy: ratelimit.FailOpen, Timeout: 50 * time.Millisecond, BreakerThreshold: -1})
		hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		start := time.Now()
		r, err := take(g, t.Context(), p, hang)
		if err != nil || !r.Allowed || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("hung backend = %+v, %v after %v; want a FailOpen answer after 50ms", r, err, time.Since(start))
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(10*time.Millisecond, cancel)
		_, err = take(g, ctx, p, hang)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("caller canceled: error %v, want Canceled", err)
		}
		if st := g.Stats(); st.Failures != 1 || st.PolicyAnswers != 1 || st.BreakerOpen {
			t.Errorf("Stats = %+v, want 1 failure, 1 policy answer, breaker disabled", st)
		}
	})
}

// TestCallerDeadline checks that behind a caller's deadline shorter than the timeout a hung
// backend call is bounded by half the time left: answered by policy before the deadline,
// counted as a failure, so that the breaker opens; a call that overruns the caller's
// deadline anyway is the caller's error and a failure too.
func TestCallerDeadline(t *testing.T) {
	p := params(t)
	synctest.Test(t, func(t *testing.T) {
		g := New(Options{Policy: ratelimit.FailLocal, Timeout: 100 * time.Millisecond, BreakerThreshold: 5, BreakerCooldown: time.Second})
		defer g.Close()
		hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		for i := range 5 {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
			start := time.Now()
			r, err := take(g, ctx, p, hang)
			cancel()
			if err != nil || r.Limit != limit || time.Since(start) != 10*time.Millisecond {
				t.Fatalf("call %d behind a 20ms deadline = %+v, %v after %v; want the local answer after 10ms", i, r, err, time.Since(start))
			}
		}
		if st := g.Stats(); st.Failures != 5 || st.PolicyAnswers != 5 || !st.BreakerOpen {
			t.Fatalf("Stats = %+v, want 5 failures, 5 policy answers, the breaker open", st)
		}
		// Past the cool-down, a probe that ignores its bound and returns after the caller's
		// deadline: the caller's error, and the breaker opens again.
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		_, err := take(g, ctx, p, func(context.Context) error { time.Sleep(30 * time.Millisecond); return errDown })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("overrunning probe: error %v, want DeadlineExceeded", err)
		}
		if st := g.Stats(); st.Failures != 6 || !st.BreakerOpen || st.BreakerOpens != 2 {
			t.Errorf("Stats = %+v, want 6 failures, the breaker open again (2 opens)", st)
		}
	})
}

// TestNotUnavailable checks that an error the store does not class as unavailability is
// returned and reported, whatever the policy, without touching the breaker.
func TestNotUnavailable(t *testing.T) {
	p := params(t)
	var reported int
	g := New(Options{Policy: ratelimit.FailOpen, BreakerThreshold: 1, Unavailable: func(err error) bool { return !errors.Is(err, errBroken) },
		OnError: func(error) { reported++ }})
	_, err := take(g, t.Context(), p, func(context.Context) error { return errBroken })
	if !errors.Is(err, errBroken) || reported != 1 {
		t.Fatalf("error %v, reported %d; want errBroken, 1", err, reported)
	}
	if st := g.Stats(); st.Failures != 0 || st.BreakerOpen || st.PolicyAnswers != 0 {
		t.Errorf("Stats = %+v, want no failure", st)
	}
}

func TestAnswerAll(t *testing.T) {
	p := params(t)
	reqs := []ratelimit.Request{{Key: "a", Algorithm: ratelimit.GCRA, Limit: limit, N: 3}, {Key: "b", Algorithm: ratelimit.GCRA, Limit: limit, N: 2}}
	ps := []algo.Params{p, p}
	for _, tc := range []struct {
		pol     ratelimit.FailPolicy
		ok      bool
		allowed string
	}{
		{ratelimit.FailLocal, true, "[true true]"},
		{ratelimit.FailOpen, true, "[true true]"},
		{ratelimit.FailClosed, false, "[false false]"},
		{ratelimit.FailError, false, "[false false]"},
	} {
		g := New(Options{Policy: tc.pol})
		results := make([]ratelimit.Result, 2)
		ok, err := g.AnswerAll(t.Context(), reqs, results, ps, errDown)
		if ok != tc.ok || (err != nil) != (tc.pol == ratelimit.FailError) {
			t.Errorf("%v: AnswerAll = %v, %v; want %v", tc.pol, ok, err, tc.ok)
		}
		if got := fmtBools([]bool{results[0].Allowed, results[1].Allowed}); got != tc.allowed {
			t.Errorf("%v: allowed %s, want %s", tc.pol, got, tc.allowed)
		}
		if tc.pol == ratelimit.FailOpen && results[0].Remaining != 1 {
			t.Errorf("FailOpen Remaining = %d, want cap-n = 1", results[0].Remaining)
		}
		g.Close()
		g.Close()
	}
}
