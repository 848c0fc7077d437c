// Package echolimit rate-limits echo servers with an [httplimit.Middleware].
//
// [New] turns a Middleware into an [echo.MiddlewareFunc]. Everything is the
// Middleware's: its rules and patterns, keys, costs, client addresses and trusted
// proxies, headers, fail policy, deny handler, OnError and Observer. A request gets the
// decision, status, headers and body that [httplimit.Middleware.Handler] would give it.
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))}
//	e := echo.New()
//	e.Use(echolimit.New(m))
//
// limits every client IP address to 100 requests a minute. [Concurrency] turns an
// [httplimit.Concurrency] into an echo.MiddlewareFunc that limits the requests served at
// once, answering 503 as [httplimit.Concurrency.Handler] does.
//
// Rule patterns are matched against the request's method, host and path in
// [http.ServeMux] syntax, whatever echo route serves it. To key a rule by echo's view
// of the request, use [Path] (the matched route), [Param] (a path parameter) or [Key]
// (any function of the [echo.Context]). These need the route, so register the
// middleware with Use (after routing), not Pre.
//
// The client address is the connection's peer address unless the Middleware's
// [httplimit.ClientIP] trusts the proxy in front: echo's RealIP and its IPExtractor
// play no part, so X-Forwarded-For from an untrusted client is ignored whatever the
// echo instance is configured to believe.
package echolimit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/labstack/echo/v4"
)

// New returns an echo middleware that limits requests with m, as m.Handler would: an
// allowed request gets the rate-limit headers and goes to the next handler; any other
// gets the headers, Retry-After on 429, and m's DenyHandler response
// ([httplimit.WriteProblem] by default), written directly, and the next handler is not
// called. Errors reach m.OnError, with the same request the KeyFuncs saw; they are not
// returned to echo's HTTPErrorHandler, since the response is already decided.
//
// The *http.Request the Middleware sees is c.Request() with the [echo.Context] added
// to its context, for [Context] and the KeyFuncs of this package; c.Request() itself
// is left as it is.
//
// m is read on the first request, as by [httplimit.Middleware.Check]; call its Validate
// method at start-up to find configuration errors before a request does. A nil m is a
// Middleware with no Limiter: every request is answered 500 with
// [httplimit.ErrConfig].
func New(m *httplimit.Middleware) echo.MiddlewareFunc {
	if m == nil {
		m = new(httplimit.Middleware)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
			if m.Serve(c.Response(), r) {
				return next(c)
			}
			return nil
		}
	}
}

// Concurrency returns an echo middleware that limits the requests the next handler
// serves at once with c, as c.Handler would: a request over c's limit is answered 503
// with Retry-After and c's DenyHandler response ([httplimit.WriteProblem] by default),
// and the next handler is not called; an admitted one goes to it, and its slot is
// released when it returns, with the outcome c.Classify makes of the response's status.
// An error the next handler returns is handed to echo's HTTPErrorHandler (c.Error) first,
// so the status it is answered with is the one classified, and is not returned again.
// Register it after [New], so requests over a rate limit do not take a slot:
//
//	e.Use(echolimit.New(m), echolimit.Concurrency(conc))
//
// The *http.Request c's Partition, Classify and DenyHandler receive is c.Request(). A
// nil c, or one with no Limiter, lets every request through.
func Concurrency(c *httplimit.Concurrency) echo.MiddlewareFunc {
	if c == nil {
		c = new(httplimit.Concurrency)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			c.Serve(ec.Response(), ec.Request(), func() int {
				if err := next(ec); err != nil {
					ec.Error(err)
				}
				return ec.Response().Status
			})
			return nil
		}
	}
}

// ctxKey is the context key of the echo.Context New adds to requests.
type ctxKey struct{}

// Context returns the [echo.Context] of a request decided by the middleware [New]
// returns: the request its KeyFuncs, CostFuncs, DenyHandler and OnError receive. ok is
// false for other requests. The echo.Context is valid only until the echo handler
// returns.
func Context(r *http.Request) (c echo.Context, ok bool) {
	c, ok = r.Context().Value(ctxKey{}).(echo.Context)
	return c, ok && c != nil
}

var (
	errNoContext = fmt.Errorf("%w: the request has no echo.Context (decided outside echolimit.New)", httplimit.ErrNoKey)
	errNoRoute   = fmt.Errorf("%w: no echo route matched", httplimit.ErrNoKey)
	errNoKeyFunc = fmt.Errorf("%w: echolimit.Key with a nil function", httplimit.ErrNoKey)
)

// Key returns an [httplimit.KeyFunc] that keys requests by what f returns for the
// request's [echo.Context], such as a value an authentication middleware stored with
// c.Set:
//
//	echolimit.Key(func(c echo.Context) (string, error) { id, _ := c.Get("user").(string); return id, nil })
//
// An error or an empty key from f, a nil f, and a request without an echo.Context (see
// [Context]) are a missing key: the rule's [httplimit.MissingKeyPolicy] applies.
func Key(f func(c echo.Context) (string, error)) httplimit.KeyFunc {
	return func(r *http.Request) (string, error) {
		if f == nil {
			return "", errNoKeyFunc
		}
		c, ok := Context(r)
		if !ok {
			return "", errNoContext
		}
		return f(c)
	}
}

// Path is an [httplimit.KeyFunc] that keys requests by the echo route that matched
// them, [echo.Context.Path]: "/users/:id" for GET /users/42 and GET /users/7 alike, for
// a limit shared by every client of a route. A request no route matched (a 404) has no
// key: the rule's [httplimit.MissingKeyPolicy] applies. The route does not include the
// method; combine it with one with [httplimit.Composite] if routes share a path.
func Path(r *http.Request) (string, error) {
	c, ok := Context(r)
	if !ok {
		return "", errNoContext
	}
	if p := c.Path(); p != "" {
		return p, nil
	}
	return "", errNoRoute
}

// Param returns an [httplimit.KeyFunc] that keys requests by the value of the route's
// path parameter name, [echo.Context.Param]: for the route "/tenants/:tenant/*",
// Param("tenant") limits each tenant on its own. A route without the parameter, or an
// empty value, is a missing key: the rule's [httplimit.MissingKeyPolicy] applies.
func Param(name string) httplimit.KeyFunc {
	return func(r *http.Request) (string, error) {
		c, ok := Context(r)
		if !ok {
			return "", errNoContext
		}
		if v := c.Param(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%w: no path parameter %q", httplimit.ErrNoKey, name)
	}
}
