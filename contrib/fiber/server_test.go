package fiberlimit_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	fiberlimit "github.com/go-ratelimit/ratelimit/contrib/fiber"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
	"github.com/gofiber/fiber/v3"
)

// serve serves app on a loopback listener until the test ends and returns its base
// URL, "http://127.0.0.1:port".
func serve(t *testing.T, app *fiber.App) string {
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
	return "http://" + ln.Addr().String()
}

// start serves a fiber app limited by m, with app.Use, on loopback with the given
// routes, each answering 200 with the route's path, and returns its base URL.
func start(t *testing.T, m *httplimit.Middleware, routes []adaptertest.Route) string {
	t.Helper()
	app := fiber.New()
	app.Use(fiberlimit.New(m))
	ok := func(c fiber.Ctx) error { return c.SendString("ok " + c.FullPath()) }
	for _, r := range routes {
		app.Add([]string{r.Method}, r.Path, ok)
	}
	return serve(t, app)
}

// newServer serves the routes of the shared suite and a tenants route with a wildcard.
func newServer(t *testing.T, m *httplimit.Middleware) string {
	t.Helper()
	return start(t, m, slices.Concat(adaptertest.Routes, []adaptertest.Route{{Method: http.MethodGet, Path: "/tenants/:tenant/*"}}))
}

// TestShared runs the scenarios every adapter shares: fiber must answer as httplimit does.
func TestShared(t *testing.T) {
	adaptertest.Run(t, adaptertest.Server{
		Name:  "fiber",
		Start: start,
		HasContext: func(r *http.Request) bool {
			_, ok := fiberlimit.Context(r)
			return ok
		},
		Unrouted: []int{http.StatusNotFound}, // fiber answers 404 for a path no route matches
	})
}

func TestFrameworkKeys(t *testing.T) {
	store := adaptertest.NewStore(t)
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
	base := serve(t, app)
	adaptertest.WantStatuses(t, base,
		"/users/1", 200, // "/users/:id" shared by every user and client
		"/users/2", 200,
		"/users/3", 429,
		"/tenants/a/x", 200,
		"/tenants/a/y", 429,
		"/tenants/b/x", 200,
		"/hello", 200, // one Go-http-client User-Agent
		"/hello", 429,
	)
	if r := adaptertest.Do(t, http.MethodGet, base+"/hello", "User-Agent: other"); r.Status != 200 {
		t.Errorf("another User-Agent: %d, want 200", r.Status)
	}
}

// TestRouteKeysUnderUse: under app.Use fiber has matched no route yet, so FullPath and
// Param find no key, rather than the mount prefix that would pool every request.
func TestRouteKeysUnderUse(t *testing.T) {
	store := adaptertest.NewStore(t)
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
	base := newServer(t, m)
	if r := adaptertest.Do(t, http.MethodGet, base+"/users/1"); r.Status != http.StatusBadRequest {
		t.Errorf("FullPath under app.Use: %d, want 400 by MissingKeyReject", r.Status)
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

// TestDenyHandler replaces the body with one written in fiber's idiom.
func TestDenyHandler(t *testing.T) {
	store := adaptertest.NewStore(t)
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
	base := newServer(t, m)
	adaptertest.Do(t, http.MethodGet, base+"/hello")
	r := adaptertest.Do(t, http.MethodGet, base+"/hello")
	if r.Status != 429 || !strings.HasPrefix(r.Body, `{"error":"slow down"`) || r.Header.Get("Retry-After") != "60" {
		t.Errorf("denied: %d %q Retry-After %q; want 429, the custom body, Retry-After 60", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}

// TestConcurrency serves fiberlimit.Concurrency and checks it answers as
// httplimit.Concurrency.Handler does, counts a 5xx as a drop (here an error the handler
// returns, answered by fiber's ErrorHandler) and releases each slot.
func TestConcurrency(t *testing.T) {
	adaptertest.RunConcurrency(t, "fiber", func(t *testing.T, c *httplimit.Concurrency, block func()) string {
		app := fiber.New()
		app.Use(fiberlimit.Concurrency(c))
		app.Get("/ok", func(c fiber.Ctx) error { return c.SendString("ok") })
		app.Get("/fail", func(fiber.Ctx) error { return errors.New("broken") })
		app.Get("/block", func(c fiber.Ctx) error { block(); return c.SendString("ok") })
		return serve(t, app)
	})
}
