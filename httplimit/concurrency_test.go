package httplimit_test

import (
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/closedloop"
)

// closedLoopLimiter is the limiter of the closed-loop test: Vegas with its queue bounds
// tightened from Netflix's defaults (3 and 6 × log10(limit)) to 1 and 2 × log10(limit),
// which keeps the limit within a quarter of the knee for knees from 10 up.
func closedLoopLimiter(t *testing.T) *concurrency.Limiter {
	t.Helper()
	l, err := concurrency.New(&concurrency.Options{
		Algorithm:    &concurrency.Vegas{Alpha: concurrency.Log10(1), Beta: concurrency.Log10(2), Threshold: concurrency.Log10(0.5)},
		InitialLimit: 5,
		MaxLimit:     200,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestConcurrencyClosedLoop runs 100 closed-loop clients against a real net/http server
// (over in-memory connections, in fake time) whose handler is a pool of 20 workers of
// 20 ms each, a knee of 20 and a capacity of 1000 requests per second. A refused client
// waits 100 ms and tries again. After 4 s the pool shrinks to 10 workers.
//
// It asserts that in each phase the limit settles within ±25% of the knee within 2 s and
// stays there, that goodput over the phase's second half is at least 90% of the knee's,
// and that the p99 latency of admitted requests is at most twice the service time plus
// 5 ms (a request admitted beyond the knee waits for one service at most).
func TestConcurrencyClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const service = 20 * time.Millisecond
		lim := closedLoopLimiter(t)
		phases := closedloop.Run(closedloop.Config{
			Clients: 100, Service: service, Knees: []int{20, 10}, Phase: 4 * time.Second,
			Backoff: 100 * time.Millisecond, Band: 0.25,
		}, (&httplimit.Concurrency{Limiter: lim}).Handler, lim.Limit)
		for _, p := range phases {
			t.Logf("knee %d: settled after %v; goodput %.0f/s (%.0f%% of %.0f/s); p50 %v p99 %v; %d refused; limit at end %d",
				p.Knee, p.Settle, p.Goodput, 100*p.Goodput/p.Capacity, p.Capacity, p.P50, p.P99, p.Refused, p.Limits[len(p.Limits)-1])
			if p.Settle < 0 || p.Settle > 2*time.Second {
				t.Errorf("knee %d: the limit did not settle within ±25%% within 2s: %v", p.Knee, p.Limits[:300])
			}
			if p.Goodput < 0.9*p.Capacity {
				t.Errorf("knee %d: goodput %.0f/s, want at least 90%% of %.0f/s", p.Knee, p.Goodput, p.Capacity)
			}
			if p.P99 > 2*service+5*time.Millisecond {
				t.Errorf("knee %d: p99 latency %v, want at most %v", p.Knee, p.P99, 2*service+5*time.Millisecond)
			}
			if p.Refused == 0 {
				t.Errorf("knee %d: no request was refused: the clients did not overload the server", p.Knee)
			}
		}
	})
}

// TestConcurrencyAnswersAndClassifies checks the 503 answer of a request over the
// limit, and what the limiter hears of admitted requests: 5xx as drops, a panic as a drop
// that frees its slot, other statuses as successes.
func TestConcurrencyAnswersAndClassifies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(1), InitialLimit: 1})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/block":
				<-release
			case "/fail":
				w.WriteHeader(http.StatusBadGateway)
			case "/panic":
				panic(http.ErrAbortHandler)
			}
		})
		s := startPipeServer(t, (&httplimit.Concurrency{Limiter: lim, RetryAfter: 1500 * time.Millisecond}).Handler(app))
		client := &http.Client{Transport: s.transport}
		get := func(path string) (*http.Response, error) {
			resp, err := client.Get(pipeURL + path)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return resp, err
		}
		go get("/block")
		synctest.Wait()
		resp, err := get("/")
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("over the limit: %v %v, want 503 with Retry-After 2 and a problem body", resp, err)
		}
		close(release)
		synctest.Wait()
		for _, path := range []string{"/fail", "/"} {
			get(path)
		}
		client.Post(pipeURL+"/panic", "text/plain", nil) // a POST, which the client does not retry

		st := lim.Stats()
		if st.Dropped != 2 || st.InFlight != 0 || st.Rejected != 1 {
			t.Errorf("Stats = %+v, want 2 dropped (502, panic), 0 in flight, 1 rejected", st)
		}
	})
}
