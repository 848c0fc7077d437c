package adaptertest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// testAllowedThenDenied checks two allowed requests and the 429 after them: its
// Retry-After, rate-limit headers and problem body.
func (s Server) testAllowedThenDenied(t *testing.T) {
	store := NewStore(t)
	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}
	base := s.start(t, m)

	for i, want := range []string{`"default";r=1;t=30`, `"default";r=0;t=60`} {
		r := Do(t, http.MethodGet, base+"/hello")
		if r.Status != http.StatusOK || r.Body != "ok /hello" {
			t.Fatalf("%s request %d: %d %q, want 200 \"ok /hello\"", s.Name, i+1, r.Status, r.Body)
		}
		if got := r.Header.Get("RateLimit"); got != want {
			t.Errorf("%s request %d: RateLimit = %q, want %q", s.Name, i+1, got, want)
		}
		if got := r.Header.Get("RateLimit-Policy"); got != `"default";q=2;w=60` {
			t.Errorf("%s request %d: RateLimit-Policy = %q", s.Name, i+1, got)
		}
	}
	r := Do(t, http.MethodGet, base+"/hello")
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s third request: %d, want 429", s.Name, r.Status)
	}
	for name, want := range map[string]string{
		"Retry-After":      "30",
		"RateLimit":        `"default";r=0;t=30`,
		"RateLimit-Policy": `"default";q=2;w=60`,
		"Content-Type":     "application/problem+json",
		"Cache-Control":    "no-store",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s 429 %s = %q, want %q", s.Name, name, got, want)
		}
	}
	for _, want := range []string{`"type":"https://iana.org/assignments/http-problem-types#quota-exceeded"`, `"status":429`, `"violated-policies":["default"]`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("%s 429 body %q lacks %s", s.Name, r.Body, want)
		}
	}
}

// testSameAsHandler sends the same requests through httplimit's own Handler and through
// the framework, each with its own store, and wants the same answers.
func (s Server) testSameAsHandler(t *testing.T) {
	configs := map[string]func(ratelimit.Store) *httplimit.Middleware{
		"default": func(st ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Limiter: ratelimit.New(st, ratelimit.GCRA, ratelimit.PerMinute(3))}
		},
		"rules legacy headers": func(st ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{
				Headers: httplimit.HeadersBoth,
				Rules: []httplimit.Rule{
					{Name: "ip", Limiter: ratelimit.New(st, ratelimit.FixedWindow, ratelimit.PerHour(4))},
					{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(st, ratelimit.TokenBucket, ratelimit.PerMinute(2))},
					{Name: "key", Pattern: "GET /api/{id}", Key: httplimit.Header("X-API-Key"), MissingKey: httplimit.MissingKeySkip,
						Limiter: ratelimit.New(st, ratelimit.SlidingWindowLog, ratelimit.PerMinute(1))},
				},
				Exclude: []string{"GET /hello"},
			}
		},
		"cost": func(st ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Rules: []httplimit.Rule{
				{Name: "weighted", Cost: httplimit.Fixed(2), Limiter: ratelimit.New(st, ratelimit.GCRA, ratelimit.PerMinute(3))},
				{Name: "huge", Pattern: "/users/", Cost: httplimit.Fixed(10), Limiter: ratelimit.New(st, ratelimit.GCRA, ratelimit.PerMinute(3))},
			}}
		},
		"reject missing key": func(st ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Rules: []httplimit.Rule{{
				Key: httplimit.Header("X-API-Key"), MissingKey: httplimit.MissingKeyReject,
				Limiter: ratelimit.New(st, ratelimit.GCRA, ratelimit.PerMinute(1)),
			}}}
		},
	}
	requests := []struct{ method, path, header string }{
		{"GET", "/hello", ""}, {"GET", "/api/1", ""}, {"GET", "/api/2", "X-API-Key: a"},
		{"GET", "/api/3", "X-API-Key: a"}, {"GET", "/users/1", ""}, {"HEAD", "/hello", ""},
		{"GET", "/hello", "X-API-Key: b"}, {"GET", "/api/4", ""}, {"GET", "/hello", ""},
		{"POST", "/login", ""}, {"GET", "/nowhere", ""},
	}
	compared := []string{"RateLimit", "RateLimit-Policy", "X-Ratelimit-Limit", "X-Ratelimit-Remaining",
		"X-Ratelimit-Reset", "Retry-After", "Content-Type", "Cache-Control"}
	for name, config := range configs {
		t.Run(name, func(t *testing.T) {
			ref := httptest.NewServer(config(NewStore(t)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "passed")
			})))
			t.Cleanup(ref.Close)
			base := s.start(t, config(NewStore(t)))
			for i, q := range requests {
				var h []string
				if q.header != "" {
					h = append(h, q.header)
				}
				want := Do(t, q.method, ref.URL+q.path, h...)
				got := Do(t, q.method, base+q.path, h...)
				// The reference handler passes every request with 200; the framework
				// answers one of s.Unrouted for a request no route serves.
				passed := got.Status == http.StatusOK || s.unrouted(got.Status)
				if passed != (want.Status == http.StatusOK) || !passed && got.Status != want.Status {
					t.Errorf("%s request %d %s %s: status %d, want %d", s.Name, i+1, q.method, q.path, got.Status, want.Status)
				}
				for _, k := range compared {
					if passed && k == "Content-Type" {
						continue // the handlers differ
					}
					if g, w := got.Header.Values(k), want.Header.Values(k); strings.Join(g, "|") != strings.Join(w, "|") {
						t.Errorf("%s request %d %s %s: %s = %q, want %q", s.Name, i+1, q.method, q.path, k, g, w)
					}
				}
				if !passed && got.Body != want.Body {
					t.Errorf("%s request %d %s %s: body %q, want %q", s.Name, i+1, q.method, q.path, got.Body, want.Body)
				}
			}
		})
	}
}

// testPerRouteRules checks that a rule limits only the routes its pattern matches.
func (s Server) testPerRouteRules(t *testing.T) {
	store := NewStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "default", Pattern: "/", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
	}}
	base := s.start(t, m)
	WantStatuses(t, base,
		"/api/1", 200,
		"/api/2", 429, // the api rule: one a minute, whatever the id
		"/hello", 200, // the default rule, untouched by the api rule
		"/", 200,
		"/hello", 429,
	)
	if got := Do(t, http.MethodGet, base+"/api/3").Header.Get("RateLimit-Policy"); got != `"api";q=1;w=60` {
		t.Errorf("%s api RateLimit-Policy = %q", s.Name, got)
	}
}

// testKeyFromHeader checks that each value of a header is limited on its own.
func (s Server) testKeyFromHeader(t *testing.T) {
	store := NewStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{{
		Key: httplimit.Header("X-API-Key"), KeyClass: "api-key",
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
	}}}
	base := s.start(t, m)
	for i, step := range []struct {
		key  string
		want int
	}{{"a", 200}, {"a", 429}, {"b", 200}, {"b", 429}, {"c", 200}} {
		if got := Do(t, http.MethodGet, base+"/hello", "X-API-Key: "+step.key).Status; got != step.want {
			t.Errorf("%s step %d: key %q: %d, want %d", s.Name, i+1, step.key, got, step.want)
		}
	}
}

// testSpoofedForwardedFor sends a new X-Forwarded-For with every request from the same
// loopback peer. The framework's own idea of the client address may believe it (gin.New
// trusts every proxy; echo.New's default IP extractor reads the header); the limit must
// not, unless the Middleware trusts loopback.
func (s Server) testSpoofedForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    []int
	}{
		{"untrusted", nil, []int{200, 429, 429}},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, []int{200, 200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := NewStore(t)
			m := &httplimit.Middleware{
				Limiter:  ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
				ClientIP: httplimit.ClientIP{TrustedProxies: tc.trusted},
			}
			base := s.start(t, m)
			for i, xff := range []string{"203.0.113.1", "203.0.113.2", "198.51.100.3"} {
				if got := Do(t, http.MethodGet, base+"/hello", "X-Forwarded-For: "+xff).Status; got != tc.want[i] {
					t.Errorf("%s request %d (X-Forwarded-For %s): %d, want %d", s.Name, i+1, xff, got, tc.want[i])
				}
			}
		})
	}
}

// testFailingStore checks a closed store under fail-open and fail-closed, and that
// OnError sees every error with the framework's context.
func (s Server) testFailingStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy ratelimit.FailPolicy
		want   int
	}{{"default open", ratelimit.FailOpen, 200}, {"closed", ratelimit.FailClosed, 503}} {
		t.Run(tc.name, func(t *testing.T) {
			store := memorystore.New(nil)
			store.Close() // every Take now fails with ratelimit.ErrClosed
			var mu sync.Mutex
			var errs []error
			m := &httplimit.Middleware{
				Limiter:      ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
				OnStoreError: tc.policy,
				OnError: func(r *http.Request, err error) {
					if !s.HasContext(r) {
						err = errors.Join(err, errors.New("OnError got a request without its "+s.Name+" context"))
					}
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				},
			}
			base := s.start(t, m)
			for i := range 3 {
				r := Do(t, http.MethodGet, base+"/hello")
				if r.Status != tc.want {
					t.Errorf("%s request %d: %d, want %d", s.Name, i+1, r.Status, tc.want)
				}
				if tc.want == 503 && r.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("%s request %d: 503 Content-Type %q", s.Name, i+1, r.Header.Get("Content-Type"))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) != 3 {
				t.Fatalf("%s: OnError called %d times, want 3", s.Name, len(errs))
			}
			for _, err := range errs {
				if !errors.Is(err, ratelimit.ErrClosed) || strings.Contains(err.Error(), "without") {
					t.Errorf("%s: OnError got %v, want an error wrapping ratelimit.ErrClosed", s.Name, err)
				}
			}
		})
	}
}

// testNoCounterPollution checks that a request denied by one rule takes nothing from the
// others.
func (s Server) testNoCounterPollution(t *testing.T) {
	store := NewStore(t)
	other := NewStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(3))},
		{Name: "global", Key: httplimit.Global, Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(3))},
		{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(store, ratelimit.SlidingWindowLog, ratelimit.PerMinute(1))},
		{Name: "user", Pattern: "GET /api/{id}", Key: httplimit.Header("X-User"), MissingKey: httplimit.MissingKeySkip,
			Limiter: ratelimit.New(other, ratelimit.GCRA, ratelimit.PerMinute(5))},
	}}
	base := s.start(t, m)
	WantStatuses(t, base,
		"/api/1", 200, // ip 2 left, global 2 left, api 0 left
		"/api/2", 429, // denied by api: takes nothing from ip and global
		"/api/3", 429,
		"/hello", 200, // ip 1 left, global 1 left
	)
	r := Do(t, http.MethodGet, base+"/hello")
	if r.Status != 200 {
		t.Fatalf("%s last allowed request: %d, want 200", s.Name, r.Status)
	}
	if got, want := r.Header.Get("RateLimit-Policy"), `"ip";q=3;w=60, "global";q=3;w=3600`; got != want {
		t.Errorf("%s RateLimit-Policy = %q, want %q", s.Name, got, want)
	}
	r = Do(t, http.MethodGet, base+"/hello")
	if r.Status != 429 || !strings.Contains(r.Body, `"violated-policies":["ip","global"]`) {
		t.Errorf("%s after 3 admitted requests: %d %s, want 429 violating ip and global", s.Name, r.Status, r.Body)
	}
}

// testMisconfigured checks that a nil Middleware, and one with no limiter, answer 500.
func (s Server) testMisconfigured(t *testing.T) {
	for name, m := range map[string]*httplimit.Middleware{
		"nil":        nil,
		"no limiter": {},
	} {
		t.Run(name, func(t *testing.T) {
			base := s.start(t, m)
			if r := Do(t, http.MethodGet, base+"/hello"); r.Status != http.StatusInternalServerError {
				t.Errorf("%s status %d, want 500", s.Name, r.Status)
			}
		})
	}
}
