package fiberlimit_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	fiberlimit "github.com/go-ratelimit/ratelimit/contrib/fiber"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/gofiber/fiber/v3"
)

// server is a fiber app served on loopback.
type server struct {
	URL string // "http://127.0.0.1:port"
}

// serve serves app on a loopback listener until the test ends.
func serve(t *testing.T, app *fiber.App) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() {
		if err := app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("listener: %v", err)
		}
	})
	return &server{URL: "http://" + ln.Addr().String()}
}

// newServer serves a fiber app limited by m, with app.Use, on loopback. Its routes
// answer 200 with the route's path.
func newServer(t *testing.T, m *httplimit.Middleware) *server {
	t.Helper()
	app := fiber.New()
	app.Use(fiberlimit.New(m))
	ok := func(c fiber.Ctx) error { return c.SendString("ok " + c.FullPath()) }
	app.Get("/", ok)
	app.Get("/hello", ok)
	app.Get("/api/:id", ok)
	app.Get("/users/:id", ok)
	app.Post("/login", ok)
	app.Get("/tenants/:tenant/*", ok)
	return serve(t, app)
}

// newStore returns a memory store closed when the test ends.
func newStore(t *testing.T) *memorystore.Store {
	t.Helper()
	s := memorystore.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// response is what a test reads of an answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request with the given headers, "Name: value" each.
func do(t *testing.T, method, url string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// wantStatuses sends GET requests to the paths, in order, and checks their statuses.
func wantStatuses(t *testing.T, base string, steps ...any) {
	t.Helper()
	for i := 0; i < len(steps); i += 2 {
		path, want := steps[i].(string), steps[i+1].(int)
		if got := do(t, http.MethodGet, base+path).status; got != want {
			t.Errorf("step %d: GET %s = %d, want %d", i/2+1, path, got, want)
		}
	}
}

func TestAllowedThenDenied(t *testing.T) {
	store := newStore(t)
	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))}
	srv := newServer(t, m)

	for i, want := range []string{`"default";r=1;t=30`, `"default";r=0;t=60`} {
		r := do(t, http.MethodGet, srv.URL+"/hello")
		if r.status != http.StatusOK || r.body != "ok /hello" {
			t.Fatalf("request %d: %d %q, want 200 \"ok /hello\"", i+1, r.status, r.body)
		}
		if got := r.header.Get("RateLimit"); got != want {
			t.Errorf("request %d: RateLimit = %q, want %q", i+1, got, want)
		}
		if got := r.header.Get("RateLimit-Policy"); got != `"default";q=2;w=60` {
			t.Errorf("request %d: RateLimit-Policy = %q", i+1, got)
		}
	}
	r := do(t, http.MethodGet, srv.URL+"/hello")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", r.status)
	}
	for name, want := range map[string]string{
		"Retry-After":      "30",
		"RateLimit":        `"default";r=0;t=30`,
		"RateLimit-Policy": `"default";q=2;w=60`,
		"Content-Type":     "application/problem+json",
		"Cache-Control":    "no-store",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("429 %s = %q, want %q", name, got, want)
		}
	}
	for _, want := range []string{`"type":"https://iana.org/assignments/http-problem-types#quota-exceeded"`, `"status":429`, `"violated-policies":["default"]`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("429 body %q lacks %s", r.body, want)
		}
	}
}

// TestSameAsHandler sends the same requests through httplimit's own Handler and through
// fiber, each with its own store, and wants the same answers.
func TestSameAsHandler(t *testing.T) {
	configs := map[string]func(ratelimit.Store) *httplimit.Middleware{
		"default": func(s ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Limiter: ratelimit.New(s, ratelimit.GCRA, ratelimit.PerMinute(3))}
		},
		"rules legacy headers": func(s ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{
				Headers: httplimit.HeadersBoth,
				Rules: []httplimit.Rule{
					{Name: "ip", Limiter: ratelimit.New(s, ratelimit.FixedWindow, ratelimit.PerHour(4))},
					{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(s, ratelimit.TokenBucket, ratelimit.PerMinute(2))},
					{Name: "key", Pattern: "GET /api/{id}", Key: httplimit.Header("X-API-Key"), MissingKey: httplimit.MissingKeySkip,
						Limiter: ratelimit.New(s, ratelimit.SlidingWindowLog, ratelimit.PerMinute(1))},
				},
				Exclude: []string{"GET /hello"},
			}
		},
		"cost": func(s ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Rules: []httplimit.Rule{
				{Name: "weighted", Cost: httplimit.Fixed(2), Limiter: ratelimit.New(s, ratelimit.GCRA, ratelimit.PerMinute(3))},
				{Name: "huge", Pattern: "/users/", Cost: httplimit.Fixed(10), Limiter: ratelimit.New(s, ratelimit.GCRA, ratelimit.PerMinute(3))},
			}}
		},
		"reject missing key": func(s ratelimit.Store) *httplimit.Middleware {
			return &httplimit.Middleware{Rules: []httplimit.Rule{{
				Key: httplimit.Header("X-API-Key"), MissingKey: httplimit.MissingKeyReject,
				Limiter: ratelimit.New(s, ratelimit.GCRA, ratelimit.PerMinute(1)),
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
			ref := httptest.NewServer(config(newStore(t)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "passed")
			})))
			t.Cleanup(ref.Close)
			srv := newServer(t, config(newStore(t)))
			for i, q := range requests {
				var h []string
				if q.header != "" {
					h = append(h, q.header)
				}
				want := do(t, q.method, ref.URL+q.path, h...)
				got := do(t, q.method, srv.URL+q.path, h...)
				// The reference handler passes every request with 200; fiber answers 404
				// for a path no route matches.
				passed := got.status == http.StatusOK || got.status == http.StatusNotFound
				if passed != (want.status == http.StatusOK) || !passed && got.status != want.status {
					t.Errorf("request %d %s %s: status %d, want %d", i+1, q.method, q.path, got.status, want.status)
				}
				for _, k := range compared {
					if passed && k == "Content-Type" {
						continue // the handlers differ
					}
					if g, w := got.header.Values(k), want.header.Values(k); strings.Join(g, "|") != strings.Join(w, "|") {
						t.Errorf("request %d %s %s: %s = %q, want %q", i+1, q.method, q.path, k, g, w)
					}
				}
				if !passed && got.body != want.body {
					t.Errorf("request %d %s %s: body %q, want %q", i+1, q.method, q.path, got.body, want.body)
				}
			}
		})
	}
}

func TestPerRouteRules(t *testing.T) {
	store := newStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "default", Pattern: "/", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
	}}
	srv := newServer(t, m)
	wantStatuses(t, srv.URL,
		"/api/1", 200,
		"/api/2", 429, // the api rule: one a minute, whatever the id
		"/hello", 200, // the default rule, untouched by the api rule
		"/", 200,
		"/hello", 429,
	)
	if got := do(t, http.MethodGet, srv.URL+"/api/3").header.Get("RateLimit-Policy"); got != `"api";q=1;w=60` {
		t.Errorf("api RateLimit-Policy = %q", got)
	}
}

func TestKeyFromHeader(t *testing.T) {
	store := newStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{{
		Key: httplimit.Header("X-API-Key"), KeyClass: "api-key",
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
	}}}
	srv := newServer(t, m)
	for i, step := range []struct {
		key  string
		want int
	}{{"a", 200}, {"a", 429}, {"b", 200}, {"b", 429}, {"c", 200}} {
		if got := do(t, http.MethodGet, srv.URL+"/hello", "X-API-Key: "+step.key).status; got != step.want {
			t.Errorf("step %d: key %q: %d, want %d", i+1, step.key, got, step.want)
		}
	}
}

// TestSpoofedForwardedFor sends a new X-Forwarded-For with every request from the same
// loopback peer. The limit must not believe it, unless the Middleware trusts loopback.
func TestSpoofedForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    []int
	}{
		{"untrusted", nil, []int{200, 429, 429}},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, []int{200, 200, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			m := &httplimit.Middleware{
				Limiter:  ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
				ClientIP: httplimit.ClientIP{TrustedProxies: tc.trusted},
			}
			srv := newServer(t, m)
			for i, xff := range []string{"203.0.113.1", "203.0.113.2", "198.51.100.3"} {
				if got := do(t, http.MethodGet, srv.URL+"/hello", "X-Forwarded-For: "+xff).status; got != tc.want[i] {
					t.Errorf("request %d (X-Forwarded-For %s): %d, want %d", i+1, xff, got, tc.want[i])
				}
			}
		})
	}
}

func TestFailingStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy httplimit.FailPolicy
		want   int
	}{{"default open", httplimit.FailOpen, 200}, {"closed", httplimit.FailClosed, 503}} {
		t.Run(tc.name, func(t *testing.T) {
			store := memorystore.New(nil)
			store.Close() // every Take now fails with ratelimit.ErrClosed
			var mu sync.Mutex
			var errs []error
			m := &httplimit.Middleware{
				Limiter:      ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
				OnStoreError: tc.policy,
				OnError: func(r *http.Request, err error) {
					if _, ok := fiberlimit.Context(r); !ok {
						err = errors.Join(err, errors.New("OnError got a request without its fiber.Ctx"))
					}
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				},
			}
			srv := newServer(t, m)
			for i := range 3 {
				r := do(t, http.MethodGet, srv.URL+"/hello")
				if r.status != tc.want {
					t.Errorf("request %d: %d, want %d", i+1, r.status, tc.want)
				}
				if tc.want == 503 && r.header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("request %d: 503 Content-Type %q", i+1, r.header.Get("Content-Type"))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) != 3 {
				t.Fatalf("OnError called %d times, want 3", len(errs))
			}
			for _, err := range errs {
				if !errors.Is(err, ratelimit.ErrClosed) || strings.Contains(err.Error(), "without") {
					t.Errorf("OnError got %v, want an error wrapping ratelimit.ErrClosed", err)
				}
			}
		})
	}
}

// TestNoCounterPollution: a request denied by one rule takes nothing from the others.
func TestNoCounterPollution(t *testing.T) {
	store := newStore(t)
	other := newStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(3))},
		{Name: "global", Key: httplimit.Global, Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(3))},
		{Name: "api", Pattern: "GET /api/{id}", Limiter: ratelimit.New(store, ratelimit.SlidingWindowLog, ratelimit.PerMinute(1))},
		{Name: "user", Pattern: "GET /api/{id}", Key: httplimit.Header("X-User"), MissingKey: httplimit.MissingKeySkip,
			Limiter: ratelimit.New(other, ratelimit.GCRA, ratelimit.PerMinute(5))},
	}}
	srv := newServer(t, m)
	wantStatuses(t, srv.URL,
		"/api/1", 200, // ip 2 left, global 2 left, api 0 left
		"/api/2", 429, // denied by api: takes nothing from ip and global
		"/api/3", 429,
		"/hello", 200, // ip 1 left, global 1 left
	)
	r := do(t, http.MethodGet, srv.URL+"/hello")
	if r.status != 200 {
		t.Fatalf("last allowed request: %d, want 200", r.status)
	}
	if got, want := r.header.Get("RateLimit-Policy"), `"ip";q=3;w=60, "global";q=3;w=3600`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	r = do(t, http.MethodGet, srv.URL+"/hello")
	if r.status != 429 || !strings.Contains(r.body, `"violated-policies":["ip","global"]`) {
		t.Errorf("after 3 admitted requests: %d %s, want 429 violating ip and global", r.status, r.body)
	}
}

func TestFrameworkKeys(t *testing.T) {
	store := newStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "route", Pattern: "GET /users/", Key: fiberlimit.FullPath, KeyClass: "route",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
		{Name: "tenant", Pattern: "GET /tenants/", Key: fiberlimit.Param("tenant"), KeyClass: "tenant",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "agent", Pattern: "GET /hello", KeyClass: "agent", Key: fiberlimit.Key(func(c fiber.Ctx) (string, error) {
			return c.Get("User-Agent"), nil
		}), Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
	}}
	// The limiter among each route's handlers: fiber has matched the route.
	limit := fiberlimit.New(m)
	ok := func(c fiber.Ctx) error { return c.SendString("ok " + c.FullPath()) }
	app := fiber.New()
	app.Get("/hello", limit, ok)
	app.Get("/users/:id", limit, ok)
	app.Get("/tenants/:tenant/*", limit, ok)
	srv := serve(t, app)
	wantStatuses(t, srv.URL,
		"/users/1", 200, // "/users/:id" shared by every user and client
		"/users/2", 200,
		"/users/3", 429,
		"/tenants/a/x", 200,
		"/tenants/a/y", 429,
		"/tenants/b/x", 200,
		"/hello", 200, // one Go-http-client User-Agent
		"/hello", 429,
	)
	if r := do(t, http.MethodGet, srv.URL+"/hello", "User-Agent: other"); r.status != 200 {
		t.Errorf("another User-Agent: %d, want 200", r.status)
	}
}

// TestRouteKeysUnderUse: under app.Use fiber has matched no route yet, so FullPath and
// Param find no key, rather than the mount prefix that would pool every request.
func TestRouteKeysUnderUse(t *testing.T) {
	store := newStore(t)
	var mu sync.Mutex
	var errs []error
	m := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "route", Key: fiberlimit.FullPath, MissingKey: httplimit.MissingKeyReject,
				Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(9))},
			{Name: "param", Key: fiberlimit.Param("id"), MissingKey: httplimit.MissingKeySkip,
				Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(9))},
		},
		OnError: func(r *http.Request, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		},
	}
	srv := newServer(t, m)
	if r := do(t, http.MethodGet, srv.URL+"/users/1"); r.status != http.StatusBadRequest {
		t.Errorf("FullPath under app.Use: %d, want 400 by MissingKeyReject", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], httplimit.ErrNoKey) || !strings.Contains(errs[0].Error(), "app.Use") {
		t.Errorf("OnError got %v, want one error wrapping httplimit.ErrNoKey that names app.Use", errs)
	}
}

// TestKeyOutsideFiber uses the package's KeyFuncs where no fiber.Ctx exists: the missing
// key policy applies, nothing panics.
func TestKeyOutsideFiber(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	for name, f := range map[string]httplimit.KeyFunc{
		"FullPath": fiberlimit.FullPath,
		"Param":    fiberlimit.Param("id"),
		"Key":      fiberlimit.Key(func(fiber.Ctx) (string, error) { return "k", nil }),
		"Key(nil)": fiberlimit.Key(nil),
	} {
		if k, err := f(r); !errors.Is(err, httplimit.ErrNoKey) {
			t.Errorf("%s outside fiber = %q, %v; want an error wrapping httplimit.ErrNoKey", name, k, err)
		}
	}
}

func TestMisconfigured(t *testing.T) {
	for name, m := range map[string]*httplimit.Middleware{
		"nil":        nil,
		"no limiter": {},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, m)
			if r := do(t, http.MethodGet, srv.URL+"/hello"); r.status != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", r.status)
			}
		})
	}
}

// TestDenyHandler replaces the body with one written in fiber's idiom.
func TestDenyHandler(t *testing.T) {
	store := newStore(t)
	m := &httplimit.Middleware{
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
		DenyHandler: func(w http.ResponseWriter, r *http.Request, d *httplimit.Decision) {
			c, ok := fiberlimit.Context(r)
			if !ok {
				http.Error(w, "no fiber.Ctx", http.StatusInternalServerError)
				return
			}
			c.Status(d.Status).JSON(fiber.Map{"error": "slow down", "retry_ms": d.RetryAfter.Milliseconds()})
		},
	}
	srv := newServer(t, m)
	do(t, http.MethodGet, srv.URL+"/hello")
	r := do(t, http.MethodGet, srv.URL+"/hello")
	if r.status != 429 || !strings.HasPrefix(r.body, `{"error":"slow down"`) || r.header.Get("Retry-After") != "60" {
		t.Errorf("denied: %d %q Retry-After %q; want 429, the custom body, Retry-After 60", r.status, r.body, r.header.Get("Retry-After"))
	}
}
