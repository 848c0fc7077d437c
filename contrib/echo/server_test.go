package echolimit_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	echolimit "github.com/go-ratelimit/ratelimit/contrib/echo"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
	"github.com/labstack/echo/v4"
)

// start serves an echo instance limited by m on loopback with the given routes, each
// answering 200 with the route's path, and returns its base URL.
func start(t *testing.T, m *httplimit.Middleware, routes []adaptertest.Route) string {
	t.Helper()
	e := echo.New()
	e.HideBanner = true
	e.Use(echolimit.New(m))
	ok := func(c echo.Context) error { return c.String(http.StatusOK, "ok "+c.Path()) }
	for _, r := range routes {
		e.Add(r.Method, r.Path, ok)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newServer serves the routes of the shared suite and a tenants route with a wildcard.
func newServer(t *testing.T, m *httplimit.Middleware) string {
	t.Helper()
	return start(t, m, slices.Concat(adaptertest.Routes, []adaptertest.Route{{Method: http.MethodGet, Path: "/tenants/:tenant/*"}}))
}

// TestShared runs the scenarios every adapter shares: echo must answer as httplimit does.
func TestShared(t *testing.T) {
	adaptertest.Run(t, adaptertest.Server{
		Name:  "echo",
		Start: start,
		HasContext: func(r *http.Request) bool {
			_, ok := echolimit.Context(r)
			return ok
		},
		// echo answers 404 for a path no route matches, 405 for a method none does.
		Unrouted: []int{http.StatusNotFound, http.StatusMethodNotAllowed},
	})
}

func TestFrameworkKeys(t *testing.T) {
	store := adaptertest.NewStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "route", Pattern: "GET /users/", Key: echolimit.Path, KeyClass: "route",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
		{Name: "tenant", Pattern: "GET /tenants/", Key: echolimit.Param("tenant"), KeyClass: "tenant",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "agent", Pattern: "GET /hello", KeyClass: "agent", Key: echolimit.Key(func(c echo.Context) (string, error) {
			return c.Request().UserAgent(), nil
		}), Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "unrouted", Pattern: "GET /nowhere", Key: echolimit.Path, MissingKey: httplimit.MissingKeyReject,
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(9))},
	}}
	base := newServer(t, m)
	adaptertest.WantStatuses(t, base,
		"/users/1", 200, // "/users/:id" shared by every user and client
		"/users/2", 200,
		"/users/3", 429,
		"/tenants/a/x", 200,
		"/tenants/a/y", 429,
		"/tenants/b/x", 200,
		"/hello", 200, // one Go-http-client User-Agent
		"/hello", 429,
		"/nowhere", 400, // no echo route: no key, rejected by policy
	)
	if r := adaptertest.Do(t, http.MethodGet, base+"/hello", "User-Agent: other"); r.Status != 200 {
		t.Errorf("another User-Agent: %d, want 200", r.Status)
	}
}

// TestKeyOutsideEcho uses the package's KeyFuncs where no echo.Context exists: the missing
// key policy applies, nothing panics.
func TestKeyOutsideEcho(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	for name, f := range map[string]httplimit.KeyFunc{
		"Path":     echolimit.Path,
		"Param":    echolimit.Param("id"),
		"Key":      echolimit.Key(func(echo.Context) (string, error) { return "k", nil }),
		"Key(nil)": echolimit.Key(nil),
	} {
		if k, err := f(r); !errors.Is(err, httplimit.ErrNoKey) {
			t.Errorf("%s outside echo = %q, %v; want an error wrapping httplimit.ErrNoKey", name, k, err)
		}
	}
}

// TestDenyHandler replaces the body with one written in echo's idiom.
func TestDenyHandler(t *testing.T) {
	store := adaptertest.NewStore(t)
	m := &httplimit.Middleware{
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
		DenyHandler: func(w http.ResponseWriter, r *http.Request, d *httplimit.Decision) {
			c, ok := echolimit.Context(r)
			if !ok {
				http.Error(w, "no echo.Context", http.StatusInternalServerError)
				return
			}
			c.JSON(d.Status, echo.Map{"error": "slow down", "retry_ms": d.RetryAfter.Milliseconds()})
		},
	}
	base := newServer(t, m)
	adaptertest.Do(t, http.MethodGet, base+"/hello")
	r := adaptertest.Do(t, http.MethodGet, base+"/hello")
	if r.Status != 429 || !strings.HasPrefix(r.Body, `{"error":"slow down"`) || r.Header.Get("Retry-After") != "60" {
		t.Errorf("denied: %d %q Retry-After %q; want 429, the custom body, Retry-After 60", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}

// TestConcurrency serves echolimit.Concurrency and checks it answers as
// httplimit.Concurrency.Handler does, counts a 5xx as a drop (here an error the handler
// returns, answered by echo's HTTPErrorHandler) and releases each slot.
func TestConcurrency(t *testing.T) {
	adaptertest.RunConcurrency(t, "echo", func(t *testing.T, c *httplimit.Concurrency, block func()) string {
		e := echo.New()
		e.Use(echolimit.Concurrency(c))
		e.GET("/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		e.GET("/fail", func(echo.Context) error { return errors.New("broken") })
		e.GET("/block", func(c echo.Context) error { block(); return c.String(http.StatusOK, "ok") })
		srv := httptest.NewServer(e)
		t.Cleanup(srv.Close)
		return srv.URL
	})
}
