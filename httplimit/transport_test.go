package httplimit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// arrivals records when requests reached a server, in the bubble's fake time, and
// answers each with the next scripted status and Retry-After (200 when the script runs
// out).
type arrivals struct {
	mu     sync.Mutex
	start  time.Time
	at     []time.Duration
	script []string // "429 3": status and Retry-After
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	a.at = append(a.at, time.Since(a.start))
	step := ""
	if len(a.script) > 0 {
		step, a.script = a.script[0], a.script[1:]
	}
	a.mu.Unlock()
	if status, retry, ok := strings.Cut(step, " "); ok {
		w.Header().Set("Retry-After", retry)
		if status == "429" {
			w.WriteHeader(http.StatusTooManyRequests)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	io.WriteString(w, "ok")
}

func (a *arrivals) times() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Duration(nil), a.at...)
}

func send(t *testing.T, c *http.Client, method string, body io.Reader) (int, error) {
	t.Helper()
	req, err := http.NewRequest(method, pipeURL+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestTransportSpacesRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memorystore.New(nil)
		defer store.Close()
		srv := &arrivals{start: time.Now()}
		s := startPipeServer(t, srv)
		// A shaper: one request every 100 ms, no burst.
		client := &http.Client{Transport: &httplimit.Transport{
			Base:    s.transport,
			Limiter: ratelimit.New(store, ratelimit.LeakyBucket, ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 1}),
		}}
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if code, err := send(t, client, "GET", nil); err != nil || code != 200 {
					t.Errorf("GET: %d %v", code, err)
				}
			})
		}
		wg.Wait()
		at := srv.times()
		if len(at) != 5 {
			t.Fatalf("%d arrivals", len(at))
		}
		for i, d := range at {
			if want := time.Duration(i) * 100 * time.Millisecond; d != want {
				t.Errorf("request %d arrived at %v, want %v (all: %v)", i+1, d, want, at)
			}
		}

		// After a pause one request passes at once; the next would have to wait 100 ms,
		// beyond its deadline, so it fails at once and is not sent.
		time.Sleep(100 * time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		for range 2 {
			req, _ := http.NewRequestWithContext(ctx, "GET", pipeURL, nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		if n := len(srv.times()); n != 6 {
			t.Errorf("%d arrivals after a request whose deadline came first, want 6", n)
		}
	})
}

func TestTransportHoldsOnRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &arrivals{start: time.Now(), script: []string{"429 3", "503 2", "429 3600"}}
		s := startPipeServer(t, srv)
		client := &http.Client{Transport: &httplimit.Transport{Base: s.transport, RespectRetryAfter: true, MaxHold: 10 * time.Second}}

		for i, want := range []int{429, 503, 429, 200} {
			if code, err := send(t, client, "GET", nil); err != nil || code != want {
				t.Fatalf("request %d: %d %v, want %d (no automatic retry)", i+1, code, err, want)
			}
		}
		// Held 3 s after the first answer, 2 s after the second, and 10 s (MaxHold, not
		// an hour) after the third.
		want := []time.Duration{0, 3 * time.Second, 5 * time.Second, 15 * time.Second}
		if at := srv.times(); !durationsEqual(at, want) {
			t.Errorf("arrivals %v, want %v", at, want)
		}

		// A request whose deadline comes before the hold ends fails at once.
		srv.mu.Lock()
		srv.script = []string{"429 60"}
		srv.mu.Unlock()
		send(t, client, "GET", nil)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "GET", pipeURL, nil)
		_, err := client.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 0 {
			t.Errorf("held request with a short deadline: %v after %v, want DeadlineExceeded at once", err, time.Since(start))
		}
	})
}

func TestTransportRetriesOnlyReplayableRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &arrivals{start: time.Now(), script: []string{"429 2", "503 1"}}
		s := startPipeServer(t, srv)
		client := &http.Client{Transport: &httplimit.Transport{Base: s.transport, MaxRetries: 2}}

		// A GET is resent after each Retry-After, and the caller sees the success.
		if code, err := send(t, client, "GET", nil); err != nil || code != 200 {
			t.Fatalf("GET: %d %v, want 200 after two retries", code, err)
		}
		if at := srv.times(); !durationsEqual(at, []time.Duration{0, 2 * time.Second, 3 * time.Second}) {
			t.Errorf("arrivals %v", at)
		}
		// A POST with a body is never resent.
		srv.mu.Lock()
		srv.script = []string{"429 2"}
		srv.mu.Unlock()
		if code, err := send(t, client, "POST", strings.NewReader("payload")); err != nil || code != 429 {
			t.Errorf("POST: %d %v, want the 429 itself", code, err)
		}
		if n := len(srv.times()); n != 4 {
			t.Errorf("%d arrivals, want 4: the POST was resent", n)
		}
	})
}

func durationsEqual(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
