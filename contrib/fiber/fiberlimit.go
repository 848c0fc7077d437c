// Package fiberlimit rate-limits fiber (v3) servers with an [httplimit.Middleware].
//
// [New] turns a Middleware into a [fiber.Handler]. Everything is the Middleware's: its
// rules and patterns, keys, costs, client addresses and trusted proxies, headers, fail
// policy, deny handler, OnError and Observer. A request gets the decision, status,
// headers and body that [httplimit.Middleware.Handler] would give it.
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	m := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))}
//	app := fiber.New()
//	app.Use(fiberlimit.New(m))
//
// limits every client IP address to 100 requests a minute. [Concurrency] turns an
// [httplimit.Concurrency] into a fiber.Handler that limits the requests served at once,
// answering 503 as [httplimit.Concurrency.Handler] does.
//
// # The request the Middleware sees
//
// fiber serves fasthttp requests, and httplimit decides on an [*http.Request]. For each
// request New builds one with what deciding can use: the method, the request URI parsed
// as net/http's server parses it, Host, the header fields, the connection's peer address
// as RemoteAddr, TLS state, ContentLength, a Body reading the request body without
// consuming it, and the context of [fiber.Ctx.Context] carrying the fiber.Ctx for
// [Context]. It holds copies, not views of fasthttp's buffers, except the Body, which
// like the fiber.Ctx is valid only until the handler returns.
//
// Rule patterns are matched against that request's method, host and path in
// [http.ServeMux] syntax, whatever fiber route serves it. To key a rule by fiber's view
// of the request, use [FullPath] (the matched route), [Param] (a path parameter) or [Key]
// (any function of the fiber.Ctx).
//
// The client address is the connection's peer address unless the Middleware's
// [httplimit.ClientIP] trusts the proxy in front: fiber's ProxyHeader, TrustProxy and
// c.IP play no part, so X-Forwarded-For from an untrusted client is ignored whatever
// the fiber app is configured to believe.
package fiberlimit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"
)

// New returns a fiber handler that limits requests with m, as m.Handler would: an
// allowed request gets the rate-limit headers and goes on with c.Next; any other gets
// the headers, Retry-After on 429, and m's DenyHandler response
// ([httplimit.WriteProblem] by default), and the chain stops there, returning nil.
// Errors reach m.OnError, with the same request the KeyFuncs saw; they are not returned
// to fiber's ErrorHandler, since the response is already decided. A request URI that
// cannot be parsed is answered 400 by the DenyHandler, its Decision.Err wrapping
// [httplimit.ErrNoKey], without consulting any rule.
//
// The DenyHandler writes through an [http.ResponseWriter] that sets fiber's response:
// the status and header fields on the first Write or WriteHeader, then the body. It may
// also write through the fiber.Ctx, found with [Context]: the header fields set on w
// (the rate-limit headers among them) are then added when it returns.
//
// Register it with app.Use to limit every request, or among a route's handlers for the
// fiber view of the route in [FullPath] and [Param].
//
// m is read on the first request, as by [httplimit.Middleware.Check]; call its Validate
// method at start-up to find configuration errors before a request does. A nil m is a
// Middleware with no Limiter: every request is answered 500 with
// [httplimit.ErrConfig].
func New(m *httplimit.Middleware) fiber.Handler {
	if m == nil {
		m = new(httplimit.Middleware)
	}
	return func(c fiber.Ctx) error {
		r, err := newRequest(c)
		if err != nil {
			unreadable(m, c, err)
			return nil
		}
		w := writerPool.Get().(*responseWriter)
		w.c = c
		if m.Serve(w, r) {
			setHeaders(&c.Response().Header, w.h)
			clear(w.h)
			w.c = nil
			writerPool.Put(w)
			return c.Next()
		}
		if !w.wrote {
			// The DenyHandler wrote nothing through w, or wrote through the fiber.Ctx
			// itself: the header fields still apply; the status is fiber's.
			setHeaders(&c.Response().Header, w.h)
		}
		return nil // w is not reused: the DenyHandler may have kept it
	}
}

// Concurrency returns a fiber handler that limits the requests the rest of the chain
// serves at once with c, as c.Handler would: a request over c's limit is answered 503
// with Retry-After and c's DenyHandler response ([httplimit.WriteProblem] by default),
// and the chain stops there, returning nil; an admitted one goes on with c.Next, and its
// slot is released when the chain returns, with the outcome c.Classify makes of the
// response's status. An error the chain returns is handed to the app's ErrorHandler
// first, so the status it is answered with is the one classified; what the
// ErrorHandler returns is returned. Register it after [New], so requests over a rate
// limit do not take a slot:
//
//	app.Use(fiberlimit.New(m), fiberlimit.Concurrency(conc))
//
// c's Partition, Classify and DenyHandler receive an *http.Request built as for [New]
// (a request URI that cannot be parsed leaves its URL empty), and the DenyHandler
// writes as New's does. A nil c, or one with no Limiter, lets every request through.
func Concurrency(c *httplimit.Concurrency) fiber.Handler {
	if c == nil || c.Limiter == nil {
		return func(fc fiber.Ctx) error { return fc.Next() }
	}
	return func(fc fiber.Ctx) error {
		r, err := newRequest(fc)
		if err != nil {
			r = &http.Request{Method: method(fc.Request().Header.Method()), URL: new(url.URL), Header: http.Header{}}
			r = r.WithContext(context.WithValue(fc.Context(), ctxKey{}, fc))
		}
		w := &responseWriter{c: fc, h: make(http.Header, 2)}
		var chainErr error
		if c.Serve(w, r, func() int {
			if err := fc.Next(); err != nil {
				chainErr = fc.App().ErrorHandler(fc, err)
			}
			return fc.Response().StatusCode()
		}) {
			return chainErr
		}
		if !w.wrote {
			setHeaders(&fc.Response().Header, w.h)
		}
		return nil
	}
}

// unreadable answers a request whose URI httplimit cannot be given: no rule can be
// decided, so it goes to m's OnError and DenyHandler as a 400.
func unreadable(m *httplimit.Middleware, c fiber.Ctx, err error) {
	r := &http.Request{Method: method(c.Request().Header.Method()), URL: new(url.URL), Header: http.Header{}}
	r = r.WithContext(context.WithValue(c.Context(), ctxKey{}, c))
	if m.OnError != nil {
		m.OnError(r, err)
	}
	deny := m.DenyHandler
	if deny == nil {
		deny = httplimit.WriteProblem
	}
	w := &responseWriter{c: c, h: make(http.Header, 8)}
	deny(w, r, &httplimit.Decision{Status: http.StatusBadRequest, Err: err})
	if !w.wrote {
		setHeaders(&c.Response().Header, w.h)
	}
}

// writerPool holds the responseWriters of allowed requests, whose header maps carry the
// rate-limit headers before they are copied to fasthttp's response.
var writerPool = sync.Pool{New: func() any { return &responseWriter{h: make(http.Header, 4)} }}

// setHeaders sets the fields of h on dst, replacing any of the same name.
func setHeaders(dst *fasthttp.ResponseHeader, h http.Header) {
	for k, vs := range h {
		dst.Del(k)
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// responseWriter is the http.ResponseWriter a DenyHandler writes fiber's response
// with.
type responseWriter struct {
	c     fiber.Ctx
	h     http.Header
	wrote bool
}

// Header returns the header fields WriteHeader will set.
func (w *responseWriter) Header() http.Header { return w.h }

// WriteHeader sets the status and the header fields; only its first call counts.
func (w *responseWriter) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote = true
	setHeaders(&w.c.Response().Header, w.h)
	w.c.Status(status)
}

// Write appends b to the response body.
func (w *responseWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.c.Response().AppendBody(b)
	return len(b), nil
}

// remotePeer returns the peer of a TCP connection as an unmapped address and port,
// and any other address as its text; a nil address gives neither.
func remotePeer(addr net.Addr) (netip.AddrPort, string) {
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ""
	case nil:
		return netip.AddrPort{}, ""
	default:
		return netip.AddrPort{}, a.String()
	}
}

// newRequest builds the *http.Request httplimit decides c's request by. Its strings
// are copies, sharing one allocation: the request URI, Host, RemoteAddr and every
// header field name and value.
func newRequest(c fiber.Ctx) (*http.Request, error) {
	fr := c.Request()
	fh := &fr.Header
	uri := fh.RequestURI() // as received: fr.RequestURI would normalise it
	host := fr.Host()
	peer, peerText := remotePeer(c.RequestCtx().RemoteAddr())

	n, size := 0, len(uri)+len(host)+len(peerText)+len("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
	for k, v := range fh.All() {
		n++
		size += len(k) + len(v)
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.Write(uri)
	sb.Write(host)
	if peer.IsValid() {
		var b [64]byte
		sb.Write(peer.AppendTo(b[:0]))
	} else {
		sb.WriteString(peerText)
	}
	peerEnd := sb.Len()
	for k, v := range fh.All() {
		sb.Write(k)
		sb.Write(v)
	}
	all := sb.String()
	rawURI, all := all[:len(uri)], all[len(uri):]
	hostText, all := all[:len(host)], all[len(host):]
	remote, all := all[:peerEnd-len(uri)-len(host)], all[peerEnd-len(uri)-len(host):]

	u, err := url.ParseRequestURI(rawURI)
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable request URI: %w", httplimit.ErrNoKey, err)
	}
	proto, major, minor := "HTTP/1.1", 1, 1
	if fh.IsHTTP11() {
		// the common case, without allocating
	} else if p := string(fh.Protocol()); p == "HTTP/1.0" {
		proto, minor = p, 0
	} else if ma, mi, ok := http.ParseHTTPVersion(p); ok {
		proto, major, minor = p, ma, mi
	}

	// Header fields but Host, which is Request.Host, as net/http's server does.
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	for k, v := range fh.All() {
		name := http.CanonicalHeaderKey(all[:len(k)])
		val := all[len(k) : len(k)+len(v)]
		all = all[len(k)+len(v):]
		if name == "Host" {
			continue
		}
		if old, ok := h[name]; ok {
			h[name] = append(old, val)
			continue
		}
		vals = append(vals, val)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}

	r := &http.Request{
		Method:        method(fh.Method()),
		URL:           u,
		Proto:         proto,
		ProtoMajor:    major,
		ProtoMinor:    minor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(fh.ContentLength()),
		Host:          hostText,
		RemoteAddr:    remote,
		RequestURI:    rawURI,
		TLS:           c.RequestCtx().TLSConnectionState(),
	}
	switch r.ContentLength {
	case -1: // chunked: unknown, as net/http reports it
	case -2: // neither Content-Length nor Transfer-Encoding: a request without a body
		r.ContentLength = 0
	}
	if r.ContentLength != 0 {
		r.Body = &body{fr: fr}
	}
	return r.WithContext(context.WithValue(c.Context(), ctxKey{}, c)), nil
}

// methods are the request methods named without allocating.
var methods = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

// method returns m as a string.
func method(m []byte) string {
	for _, s := range methods {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

// body reads a request's body from fasthttp without consuming it: the handlers after
// the middleware read it whole.
type body struct {
	fr *fasthttp.Request
	r  *bytes.Reader
}

func (b *body) Read(p []byte) (int, error) {
	if b.r == nil {
		b.r = bytes.NewReader(b.fr.Body())
	}
	return b.r.Read(p)
}

func (b *body) Close() error { return nil }

var _ io.ReadCloser = (*body)(nil)

// ctxKey is the context key of the fiber.Ctx New adds to requests.
type ctxKey struct{}

// Context returns the [fiber.Ctx] of a request decided by the handler [New] returns:
// the request its KeyFuncs, CostFuncs, DenyHandler and OnError receive. ok is false for
// other requests. The fiber.Ctx is valid only until the fiber handler returns.
func Context(r *http.Request) (c fiber.Ctx, ok bool) {
	c, ok = r.Context().Value(ctxKey{}).(fiber.Ctx)
	return c, ok && c != nil
}

var (
	errNoContext  = fmt.Errorf("%w: the request has no fiber.Ctx (decided outside fiberlimit.New)", httplimit.ErrNoKey)
	errMiddleware = fmt.Errorf("%w: the handler runs as middleware (app.Use), before fiber matches a route; list it among the route's handlers", httplimit.ErrNoKey)
	errNoKeyFunc  = fmt.Errorf("%w: fiberlimit.Key with a nil function", httplimit.ErrNoKey)
)

// Key returns an [httplimit.KeyFunc] that keys requests by what f returns for the
// request's [fiber.Ctx], such as a value an authentication middleware stored in Locals:
//
//	fiberlimit.Key(func(c fiber.Ctx) (string, error) { return fiber.Locals[string](c, "user"), nil })
//
// An error or an empty key from f, a nil f, and a request without a fiber.Ctx (see
// [Context]) are a missing key: the rule's [httplimit.MissingKeyPolicy] applies.
func Key(f func(c fiber.Ctx) (string, error)) httplimit.KeyFunc {
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

// route returns the fiber.Ctx of r once fiber has matched a route, or an error when it
// has not: the handler runs as middleware, under app.Use.
func route(r *http.Request) (fiber.Ctx, error) {
	c, ok := Context(r)
	if !ok {
		return nil, errNoContext
	}
	if !c.Matched() {
		return nil, errMiddleware
	}
	return c, nil
}

// FullPath is an [httplimit.KeyFunc] that keys requests by the fiber route that matched
// them, [fiber.Ctx.FullPath]: "/users/:id" for GET /users/42 and GET /users/7 alike, for
// a limit shared by every client of a route. fiber matches routes one handler at a
// time, so the route is known only when the handler New returns is listed among the
// route's own handlers:
//
//	app.Get("/users/:id", fiberlimit.New(m), getUser)
//
// Under app.Use it is a missing key, never the prefix the middleware is mounted at
// (which would pool every request into one bucket): the rule's
// [httplimit.MissingKeyPolicy] applies. The route does not include the method; combine
// it with one with [httplimit.Composite] if routes share a path.
func FullPath(r *http.Request) (string, error) {
	c, err := route(r)
	if err != nil {
		return "", err
	}
	return c.FullPath(), nil
}

// Param returns an [httplimit.KeyFunc] that keys requests by the value of the route's
// path parameter name, c.Params(name): for the route "/tenants/:tenant/*",
// Param("tenant") limits each tenant on its own. As for [FullPath], the handler New returns
// must be among the route's own handlers. A route without the parameter, an empty value,
// or use under app.Use is a missing key: the rule's [httplimit.MissingKeyPolicy]
// applies.
func Param(name string) httplimit.KeyFunc {
	return func(r *http.Request) (string, error) {
		c, err := route(r)
		if err != nil {
			return "", err
		}
		if v := c.Params(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%w: no path parameter %q", httplimit.ErrNoKey, name)
	}
}
