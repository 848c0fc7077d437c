package adaptertest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// ConcurrencyStart serves, on loopback until the test ends, a framework app whose
// requests go through the adapter's concurrency middleware made from c, and returns its
// base URL. Its routes: GET /ok answers 200 "ok"; GET /fail answers 500 (in the
// framework's own idiom, such as returning an error); GET /block calls block, then
// answers 200 "ok".
type ConcurrencyStart func(t *testing.T, c *httplimit.Concurrency, block func()) string

// RunConcurrency checks an adapter of [httplimit.Concurrency] against c.Handler over
// net/http, each under a subtest ("net/http" and name): with a limit of one, a request
// beyond it is answered 503 with Retry-After and the problem body; a 5xx is counted as
// a drop; each request releases its slot, so the next one passes. The adapter's 503
// must carry the status, Retry-After, Content-Type and body net/http's does.
func RunConcurrency(t *testing.T, name string, start ConcurrencyStart) {
	netHTTP := func(t *testing.T, c *httplimit.Concurrency, block func()) string {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
		mux.HandleFunc("GET /fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		mux.HandleFunc("GET /block", func(w http.ResponseWriter, _ *http.Request) { block(); w.Write([]byte("ok")) })
		srv := httptest.NewServer(c.Handler(mux))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	var want, got Response
	t.Run("net/http", func(t *testing.T) { want = concurrencyScenario(t, netHTTP) })
	t.Run(name, func(t *testing.T) { got = concurrencyScenario(t, start) })
	if want.Status == 0 || got.Status == 0 {
		return // a scenario failed before its denial; its errors are reported
	}
	if got.Status != want.Status || got.Body != want.Body {
		t.Errorf("%s denied: %d %q; net/http: %d %q", name, got.Status, got.Body, want.Status, want.Body)
	}
	for _, h := range []string{"Retry-After", "Content-Type"} {
		if g, w := got.Header.Values(h), want.Header.Values(h); !slices.Equal(g, w) {
			t.Errorf("%s denied: %s %q; net/http: %q", name, h, g, w)
		}
	}
}

// concurrencyScenario runs the scenario of [RunConcurrency] against the app start
// serves and returns the denied response.
func concurrencyScenario(t *testing.T, start ConcurrencyStart) Response {
	lim, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(1), InitialLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	base := start(t, &httplimit.Concurrency{Limiter: lim, RetryAfter: 1500 * time.Millisecond}, func() {
		entered <- struct{}{}
		<-release
	})
	stats := func(step string, inFlight int, rejected, dropped uint64) {
		t.Helper()
		s := lim.Stats()
		if s.InFlight != inFlight || s.Rejected != rejected || s.Dropped != dropped {
			t.Errorf("after %s: in flight %d, rejected %d, dropped %d; want %d, %d, %d",
				step, s.InFlight, s.Rejected, s.Dropped, inFlight, rejected, dropped)
		}
	}

	if r := Do(t, http.MethodGet, base+"/ok"); r.Status != http.StatusOK || r.Body != "ok" {
		t.Errorf("first request: %d %q, want 200 \"ok\"", r.Status, r.Body)
	}
	stats("the first request", 0, 0, 0)

	blocked := make(chan Response, 1)
	go func() {
		// Do's t.Fatal must not run off the test goroutine: send the request here.
		resp, err := http.Get(base + "/block")
		if err != nil {
			t.Errorf("blocked request: %v", err)
			blocked <- Response{}
			return
		}
		resp.Body.Close()
		blocked <- Response{Status: resp.StatusCode}
	}()
	select {
	case <-entered:
	case r := <-blocked:
		t.Fatalf("the blocking request returned %d before its handler ran", r.Status)
	}
	denied := Do(t, http.MethodGet, base+"/ok")
	if denied.Status != http.StatusServiceUnavailable || denied.Header.Get("Retry-After") != "2" {
		t.Errorf("request beyond the limit: %d, Retry-After %q; want 503, 2", denied.Status, denied.Header.Get("Retry-After"))
	}
	stats("the denial", 1, 1, 0)
	close(release)
	if r := <-blocked; r.Status != http.StatusOK {
		t.Errorf("blocked request: %d, want 200", r.Status)
	}
	stats("the blocked request", 0, 1, 0)

	if r := Do(t, http.MethodGet, base+"/fail"); r.Status != http.StatusInternalServerError {
		t.Errorf("failing request: %d, want 500", r.Status)
	}
	stats("the 500", 0, 1, 1)
	if r := Do(t, http.MethodGet, base+"/ok"); r.Status != http.StatusOK {
		t.Errorf("request after the 500: %d, want 200: its slot was not released", r.Status)
	}
	stats("the last request", 0, 1, 1)
	return denied
}
