// Package ginlimit rate-limits gin servers with an [httplimit.Middleware].
//
// [New] turns a Middleware into a [gin.HandlerFunc]. Everything is the Middleware's:
// its rules and patterns, keys, costs, client addresses and trusted proxies, headers,
// fail policy, deny handler, OnError and Observer. A request gets the decision, status,
// headers and body that [httplimit.Middleware.Handler] would give it.
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))}
//	r := gin.New()
//	r.Use(ginlimit.New(m))
//
// limits every client IP address to 100 requests a minute. [Concurrency] turns an
// [httplimit.Concurrency] into a gin.HandlerFunc that limits the requests served at
// once, answering 503 as [httplimit.Concurrency.Handler] does.
//
// Rule patterns are matched against the request's method, host and path in
// [http.ServeMux] syntax, whatever gin route serves it. To key a rule by gin's view of
// the request, use [FullPath] (the matched route), [Param] (a path parameter) or [Key]
// (any function of the [gin.Context]).
//
// The client address is the connection's peer address unless the Middleware's
// [httplimit.ClientIP] trusts the proxy in front: gin's own ClientIP method and its
// trusted proxies play no part, so X-Forwarded-For from an untrusted client is ignored
// even on an engine that would believe it.
package ginlimit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// New returns a gin middleware that limits requests with m, as m.Handler would: an
// allowed request gets the rate-limit headers and continues down the chain; any other
// gets the headers, Retry-After on 429, and m's DenyHandler response
// ([httplimit.WriteProblem] by default), and the chain is aborted. Errors reach
// m.OnError, with the same request the KeyFuncs saw.
//
// The *http.Request the Middleware sees is c.Request with the [gin.Context] added to
// its context, for [Context] and the KeyFuncs of this package; c.Request itself is left
// as it is.
//
// m is read on the first request, as by [httplimit.Middleware.Check]; call its Validate
// method at start-up to find configuration errors before a request does. A nil m is a
// Middleware with no Limiter: every request is answered 500 with
// [httplimit.ErrConfig].
func New(m *httplimit.Middleware) gin.HandlerFunc {
	if m == nil {
		m = new(httplimit.Middleware)
	}
	return func(c *gin.Context) {
		r := c.Request.WithContext(context.WithValue(c.Request.Context(), ctxKey{}, c))
		if !m.Serve(c.Writer, r) {
			c.Abort()
		}
	}
}

// Concurrency returns a gin middleware that limits the requests the rest of the chain
// serves at once with c, as c.Handler would: a request over c's limit is answered 503
// with Retry-After and c's DenyHandler response ([httplimit.WriteProblem] by default),
// and the chain is aborted; an admitted one continues with c.Next, and its slot is
// released when the chain returns, with the outcome c.Classify makes of the status gin
// reports. Register it after [New], so requests over a rate limit do not take a slot:
//
//	r.Use(ginlimit.New(m), ginlimit.Concurrency(conc))
//
// The *http.Request c's Partition, Classify and DenyHandler receive is c.Request. A nil
// c, or one with no Limiter, lets every request through.
func Concurrency(c *httplimit.Concurrency) gin.HandlerFunc {
	if c == nil {
		c = new(httplimit.Concurrency)
	}
	return func(gc *gin.Context) {
		if !c.Serve(gc.Writer, gc.Request, func() int {
			gc.Next()
			return gc.Writer.Status()
		}) {
			gc.Abort()
		}
	}
}

// ctxKey is the context key of the gin.Context New adds to requests.
type ctxKey struct{}

// Context returns the [gin.Context] of a request decided by the middleware [New]
// returns: the request its KeyFuncs, CostFuncs, DenyHandler and OnError receive. ok is
// false for other requests. The gin.Context is valid only until the gin handler chain
// returns.
func Context(r *http.Request) (c *gin.Context, ok bool) {
	c, ok = r.Context().Value(ctxKey{}).(*gin.Context)
	return c, ok && c != nil
}

var (
	errNoContext = fmt.Errorf("%w: the request has no gin.Context (decided outside ginlimit.New)", httplimit.ErrNoKey)
	errNoRoute   = fmt.Errorf("%w: no gin route matched", httplimit.ErrNoKey)
	errNoKeyFunc = fmt.Errorf("%w: ginlimit.Key with a nil function", httplimit.ErrNoKey)
)

// Key returns an [httplimit.KeyFunc] that keys requests by what f returns for the
// request's [gin.Context], such as a value an authentication middleware stored with
// c.Set:
//
//	ginlimit.Key(func(c *gin.Context) (string, error) { return c.GetString(gin.AuthUserKey), nil })
//
// An error or an empty key from f, a nil f, and a request without a gin.Context (see
// [Context]) are a missing key: the rule's [httplimit.MissingKeyPolicy] applies.
func Key(f func(c *gin.Context) (string, error)) httplimit.KeyFunc {
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

// FullPath is an [httplimit.KeyFunc] that keys requests by the gin route that matched
// them, [gin.Context.FullPath]: "/users/:id" for GET /users/42 and GET /users/7 alike,
// for a limit shared by every client of a route. A request no route matched (a 404)
// has no key: the rule's [httplimit.MissingKeyPolicy] applies. The route does not
// include the method; combine it with one with [httplimit.Composite] if routes share a
// path.
func FullPath(r *http.Request) (string, error) {
	c, ok := Context(r)
	if !ok {
		return "", errNoContext
	}
	if p := c.FullPath(); p != "" {
		return p, nil
	}
	return "", errNoRoute
}

// Param returns an [httplimit.KeyFunc] that keys requests by the value of the route's
// path parameter name, [gin.Context.Param]: for the route "/tenants/:tenant/*path",
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
