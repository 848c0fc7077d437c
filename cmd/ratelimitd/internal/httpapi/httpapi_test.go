package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/memorystore"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
)

// counts is an engine.Observer that counts the requests served, by transport and outcome.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) Served(transport string, o engine.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[transport+" "+o.String()]++
}

func (*counts) Decided(string, []rules.Entry, *engine.Status, uint64) {}
func (*counts) Failed(string, error)                                  {}
func (*counts) Latency(string, time.Duration)                         {}

// newHandler serves 1 a minute per user by GCRA, not by a fixed window aligned to the
// clock, so a test that crosses a minute boundary is still denied on its second request.
func newHandler(t testing.TB) (http.Handler, *counts) {
	set := rulestest.Compile(t, "domain: d\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 1, algorithm: gcra}\n")
	store := memorystore.New(nil)
	t.Cleanup(func() { store.Close() })
	c := &counts{m: map[string]int{}}
	return Handler(&Options{Engine: engine.New(store, set, &engine.Options{Observer: c})}), c
}

func serve(h http.Handler, path, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return w
}

func TestCheckAndJSON(t *testing.T) {
	h, c := newHandler(t)
	one := `{"domain":"d","descriptors":[{"entries":[{"key":"user","value":"a"}]}]}`
	for i, tc := range []struct {
		path, body string
		status     int
		contains   string
	}{
		{"/v1/check", one, 200, `"allowed":true`},
		{"/v1/check", `{"domain":"d","descriptors":[{"entries":[{"key":"nobody","value":"a"}]}]}`, 200,
			`{"allowed":true,"statuses":[{"allowed":true,"rule":null,"matched":false,"remaining":0,"reset_after_ms":0}]}`},
		{"/v1/check", `{"domain":"typo","descriptors":[{"entries":[{"key":"user","value":"a"}]}]}`, 200,
			`{"allowed":true,"unknown_domain":true,"statuses":[{"allowed":true,"rule":null,"matched":false,"remaining":0,"reset_after_ms":0}]}`},
		{"/v1/check", one, 200, `"allowed":false`},
		{"/json", one, 429, `"OVER_LIMIT"`},
		{"/v1/check", one + one, 400, "more than one JSON value"},
		{"/v1/check", "", 400, "empty"},
		{"/v1/check", `{"domain":"","descriptors":[]}`, 400, "domain must not be empty"},
		{"/v1/check", `{"domain":"d","descriptors":[` + strings.Repeat(`{"entries":[{"key":"user","value":"a"}]},`, engine.MaxDescriptors) + `{"entries":[]}]}`, 400, "65 descriptors, at most 64 are allowed"},
		{"/json", `{"domain":"d","descriptors":[` + strings.Repeat(`{"entries":[{"key":"user","value":"a"}]},`, engine.MaxDescriptors) + `{"entries":[]}]}`, 400, "65 descriptors, at most 64 are allowed"},
		{"/v1/check", `{"domain":"d","descriptors":[{"entries":[{"key":"user","value":"` + strings.Repeat("x", MaxBody) + `"}]}]}`, 413, "too large"},
		{"/json", `{"domain":"d","descriptors":[{"entries":[{"key":"user","value":"` + strings.Repeat("x", MaxBody) + `"}]}]}`, 413, "too large"},
		{"/json", `{"domain":"d","descriptors":[{"entries":[{"key":"user","value":"b"}]}],"bogus":1}`, 400, "bogus"},
	} {
		w := serve(h, tc.path, tc.body)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("step %d: POST %s: got %d %.200s, want %d containing %q", i+1, tc.path, w.Code, w.Body.String(), tc.status, tc.contains)
		}
	}
	if w := serve(h, "/v1/check", one); w.Header().Get("Retry-After") == "" {
		t.Error("a denied /v1/check has no Retry-After")
	}
	want := map[string]int{"http OK": 3, "http OVER_LIMIT": 2, "http INVALID": 5, "json OVER_LIMIT": 1, "json INVALID": 3}
	for k, n := range want {
		if c.m[k] != n {
			t.Errorf("requests %q: got %d, want %d (all: %v)", k, c.m[k], n, c.m)
		}
	}
}

// FuzzCheck: any body gets 200, 400 or 413, never a panic or a 5xx.
func FuzzCheck(f *testing.F) {
	f.Add(`{"domain":"d","descriptors":[{"entries":[{"key":"user","value":"a"}],"hits":0}]}`)
	f.Add(`{"domain":"d","hits":18446744073709551615,"descriptors":[{"entries":[]}]}`)
	f.Add(`[]`)
	h, _ := newHandler(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/check", "/json"} {
			w := serve(h, path, body)
			switch w.Code {
			case 200, 400, 413, 429:
			default:
				t.Fatalf("POST %s %q: status %d %s", path, body, w.Code, w.Body)
			}
		}
	})
}
