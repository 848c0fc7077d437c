package ginlimit_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-ratelimit/ratelimit"
	ginlimit "github.com/go-ratelimit/ratelimit/contrib/gin"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// start serves a gin engine limited by m on loopback with the given routes, each
// answering 200 with the route's path, and returns its base URL.
func start(t *testing.T, m *httplimit.Middleware, routes []adaptertest.Route) string {
	t.Helper()
	e := gin.New()
	e.Use(ginlimit.New(m))
	ok := func(c *gin.Context) { c.String(http.StatusOK, "ok "+c.FullPath()) }
	for _, r := range routes {
		e.Handle(r.Method, r.Path, ok)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newServer serves the routes of the shared suite and a tenants route with a wildcard.
func newServer(t *testing.T, m *httplimit.Middleware) string {
	t.Helper()
	return start(t, m, slices.Concat(adaptertest.Routes, []adaptertest.Route{{Method: http.MethodGet, Path: "/tenants/:tenant/*path"}}))
}

// TestShared runs the scenarios every adapter shares: gin must answer as httplimit does.
func TestShared(t *testing.T) {
	adaptertest.Run(t, adaptertest.Server{
		Name:  "gin",
		Start: start,
		HasContext: func(r *http.Request) bool {
			_, ok := ginlimit.Context(r)
			return ok
		},
		Unrouted: []int{http.StatusNotFound}, // gin answers 404 for a path no route matches
	})
}

func TestFrameworkKeys(t *testing.T) {
	store := adaptertest.NewStore(t)
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "route", Pattern: "GET /users/", Key: ginlimit.FullPath, KeyClass: "route",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(2))},
		{Name: "tenant", Pattern: "GET /tenants/", Key: ginlimit.Param("tenant"), KeyClass: "tenant",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "agent", Pattern: "GET /hello", KeyClass: "agent", Key: ginlimit.Key(func(c *gin.Context) (string, error) {
			return c.GetHeader("User-Agent"), nil
		}), Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))},
		{Name: "unrouted", Pattern: "GET /nowhere", Key: ginlimit.FullPath, MissingKey: httplimit.MissingKeyReject,
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
		"/nowhere", 400, // no gin route: no key, rejected by policy
	)
	if r := adaptertest.Do(t, http.MethodGet, base+"/hello", "User-Agent: other"); r.Status != 200 {
		t.Errorf("another User-Agent: %d, want 200", r.Status)
	}
}

// TestKeyOutsideGin uses the package's KeyFuncs where no gin.Context exists: the missing
// key policy applies, nothing panics.
func TestKeyOutsideGin(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	for name, f := range map[string]httplimit.KeyFunc{
		"FullPath": ginlimit.FullPath,
		"Param":    ginlimit.Param("id"),
		"Key":      ginlimit.Key(func(*gin.Context) (string, error) { return "k", nil }),
		"Key(nil)": ginlimit.Key(nil),
	} {
		if k, err := f(r); !errors.Is(err, httplimit.ErrNoKey) {
			t.Errorf("%s outside gin = %q, %v; want an error wrapping httplimit.ErrNoKey", name, k, err)
		}
	}
}

// TestDenyHandler replaces the body with one written in gin's idiom.
func TestDenyHandler(t *testing.T) {
	store := adaptertest.NewStore(t)
	m := &httplimit.Middleware{
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
		DenyHandler: func(w http.ResponseWriter, r *http.Request, d *httplimit.Decision) {
			c, ok := ginlimit.Context(r)
			if !ok {
				http.Error(w, "no gin.Context", http.StatusInternalServerError)
				return
			}
			c.JSON(d.Status, gin.H{"error": "slow down", "retry_ms": d.RetryAfter.Milliseconds()})
		},
	}
	base := newServer(t, m)
	adaptertest.Do(t, http.MethodGet, base+"/hello")
	r := adaptertest.Do(t, http.MethodGet, base+"/hello")
	if r.Status != 429 || !strings.HasPrefix(r.Body, `{"error":"slow down"`) || r.Header.Get("Retry-After") != "60" {
		t.Errorf("denied: %d %q Retry-After %q; want 429, the custom body, Retry-After 60", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}

// TestConcurrency serves ginlimit.Concurrency and checks it answers as
// httplimit.Concurrency.Handler does, counts a 5xx as a drop and releases each slot.
func TestConcurrency(t *testing.T) {
	adaptertest.RunConcurrency(t, "gin", func(t *testing.T, c *httplimit.Concurrency, block func()) string {
		e := gin.New()
		e.Use(ginlimit.Concurrency(c))
		e.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
		e.GET("/fail", func(c *gin.Context) { c.AbortWithStatus(http.StatusInternalServerError) })
		e.GET("/block", func(c *gin.Context) { block(); c.String(http.StatusOK, "ok") })
		srv := httptest.NewServer(e)
		t.Cleanup(srv.Close)
		return srv.URL
	})
}
