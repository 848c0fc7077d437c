// Package adaptertest is the suite of scenarios every framework adapter of httplimit
// must pass: ginlimit, echolimit, fiberlimit, and any adapter written later. An
// adapter's tests call [Run] with a [Server] that serves the framework's real app,
// limited by a given [httplimit.Middleware]:
//
//	func TestShared(t *testing.T) {
//		adaptertest.Run(t, adaptertest.Server{
//			Name:       "gin",
//			Start:      start,
//			HasContext: func(r *http.Request) bool { _, ok := ginlimit.Context(r); return ok },
//			Unrouted:   []int{http.StatusNotFound},
//		})
//	}
//
// The suite checks what the adapter must not change of httplimit: the allowed requests
// and the 429 with its Retry-After, rate-limit headers and problem body; per-route rules;
// keys from a header; client addresses from X-Forwarded-For only behind trusted proxies;
// a failing store under fail-open and fail-closed, with OnError seeing the framework's
// context; several rules whose denials take nothing from the others; a nil or
// misconfigured Middleware answering 500; and the same answers
// as [httplimit.Middleware.Handler] for the same requests. [RunExample] checks the
// example server every adapter ships; [RunConcurrency] checks an adapter of
// [httplimit.Concurrency] against its net/http Handler. [Do], [WantStatuses] and [NewStore] serve the
// adapters' own tests too.
package adaptertest

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// Route is one route of the app under test. Path is written with ":name" parameters,
// which gin, echo and fiber all read.
type Route struct {
	Method, Path string
}

// Routes are the routes the suite asks for.
var Routes = []Route{
	{http.MethodGet, "/"},
	{http.MethodGet, "/hello"},
	{http.MethodGet, "/api/:id"},
	{http.MethodGet, "/users/:id"},
	{http.MethodPost, "/login"},
}

// Server describes the adapter under test.
type Server struct {
	// Name names the framework in the names of the subtests and in failure messages:
	// "gin", "echo", "fiber".
	Name string

	// Start serves the framework's app on loopback until the test ends and returns its
	// base URL, "http://127.0.0.1:port". The adapter's middleware, made from m (which may
	// be nil or misconfigured), runs for every request, before routing as app.Use or its
	// framework's equivalent does. Each route answers 200 with "ok " followed by the
	// route's path as written in routes.
	Start func(t *testing.T, m *httplimit.Middleware, routes []Route) string

	// HasContext reports whether r, as the Middleware's callbacks see it, carries the
	// framework's context.
	HasContext func(r *http.Request) bool

	// Unrouted are the statuses the framework answers, once the limit lets it pass, a
	// request no route serves: 404, and 405 where a method no route takes gets it.
	Unrouted []int
}

// Run runs the scenarios against the adapter s describes, under a subtest named after
// the framework, each scenario a subtest with its own app and store.
func Run(t *testing.T, s Server) {
	if s.Name == "" || s.Start == nil || s.HasContext == nil {
		t.Fatal("adaptertest: Server.Name, Start and HasContext are required")
	}
	t.Run(s.Name, func(t *testing.T) {
		t.Run("AllowedThenDenied", s.testAllowedThenDenied)
		t.Run("SameAsHandler", s.testSameAsHandler)
		t.Run("PerRouteRules", s.testPerRouteRules)
		t.Run("KeyFromHeader", s.testKeyFromHeader)
		t.Run("SpoofedForwardedFor", s.testSpoofedForwardedFor)
		t.Run("FailingStore", s.testFailingStore)
		t.Run("NoCounterPollution", s.testNoCounterPollution)
		t.Run("Misconfigured", s.testMisconfigured)
	})
}

// start serves the app with the suite's routes.
func (s Server) start(t *testing.T, m *httplimit.Middleware) string {
	t.Helper()
	return s.Start(t, m, Routes)
}

// unrouted reports whether status is one the framework answers a request no route serves.
func (s Server) unrouted(status int) bool { return slices.Contains(s.Unrouted, status) }

// NewStore returns a memory store closed when the test ends.
func NewStore(t *testing.T) *memorystore.Store {
	t.Helper()
	st := memorystore.New(nil)
	t.Cleanup(func() { st.Close() })
	return st
}

// Response is what a test reads of an answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends one request with the given headers, "Name: value" each.
func Do(t *testing.T, method, url string, headers ...string) Response {
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
	return Response{resp.StatusCode, resp.Header, string(b)}
}

// WantStatuses sends GET requests to the paths, in order, and checks their statuses:
// steps alternate a path and the status it must get.
func WantStatuses(t *testing.T, base string, steps ...any) {
	t.Helper()
	for i := 0; i < len(steps); i += 2 {
		path, want := steps[i].(string), steps[i+1].(int)
		if got := Do(t, http.MethodGet, base+path).Status; got != want {
			t.Errorf("step %d: GET %s = %d, want %d", i/2+1, path, got, want)
		}
	}
}
