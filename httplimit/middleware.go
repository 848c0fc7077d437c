package httplimit

import (
	"net/http"
	"sync"

	"github.com/go-ratelimit/ratelimit"
)

// Middleware limits the requests an HTTP handler serves. The zero value with a Limiter,
//
//	httplimit.Middleware{Limiter: lim}
//
// limits every request by its client's IP address ([ClientIP] with no trusted proxies),
// answers 429 with Retry-After and an RFC 9457 problem body when the limit is reached,
// sends the IETF RateLimit and RateLimit-Policy headers on every response, and lets
// requests through if the store fails.
//
// Set Rules for several limits, per-route limits and other keys. A request is admitted
// only if every rule that applies admits it, and a denied request consumes nothing from
// any rule (see [Middleware.Check] for the exact guarantee across stores).
//
// A Middleware is safe for concurrent use. It reads its fields once, on first use
// (Handler, Check or Validate); changing them afterwards has no effect on the
// configuration and is a data race.
type Middleware struct {
	// Limiter is the limit of the implicit rule when Rules is empty, and of every rule
	// whose own Limiter is nil.
	Limiter *ratelimit.Limiter

	// Rules are the limits applied to requests. Default (empty): one rule named
	// "default" on the client IP with Limiter, for every request.
	Rules []Rule

	// Exclude lists patterns, in [http.ServeMux] syntax, of requests no rule applies to,
	// such as "GET /healthz" or "/static/". As in routing, the most specific pattern
	// wins: a rule on "/static/big/" still applies below an excluded "/static/". An
	// excluded request gets no rate-limit headers.
	Exclude []string

	// ClientIP derives client addresses: for rules with no Key, and for the
	// MissingKeyFallback policy. Default: the connection's peer address, IPv6 by /64,
	// no trusted proxies.
	ClientIP ClientIP

	// Headers selects the rate-limit headers sent on every response a rule applied to,
	// allowed or not. Default HeadersIETF.
	Headers HeaderStyle

	// OnStoreError says what happens to a request when a store returns an error:
	// [ratelimit.FailOpen] lets it through as if the failed store's rules did not apply
	// (rules on stores that did answer are still enforced); [ratelimit.FailClosed]
	// answers 503, for limits that guard money or abuse. The zero value,
	// [ratelimit.FailLocal], means FailOpen here: the middleware keeps no store to answer
	// locally from. [ratelimit.FailError] is a store's policy, a configuration error here.
	//
	// Which layer decides: a store with a fail policy of its own (redisstore) answers its
	// backend's outages itself, by default from a local in-memory limit, and returns no
	// error, so this policy never sees them. It applies to the errors that do reach the
	// middleware: a store configured with FailError, a closed store, a custom store.
	// Default FailOpen.
	OnStoreError ratelimit.FailPolicy

	// DenyHandler writes the response to a request the middleware does not pass on:
	// d.Status says why (429 limited, 413 cost above capacity, 400 no key or unreadable
	// cost, 503 store error under FailClosed, 500 misconfiguration). The rate-limit
	// headers and Retry-After are already set on w. Default [WriteProblem].
	DenyHandler func(w http.ResponseWriter, r *http.Request, d *Decision)

	// OnError, if set, hears about every error a request met (a store failure, a
	// misconfiguration, a missing key, an unreadable cost), whatever became of the
	// request. The library never logs: this is where to. Called synchronously.
	OnError func(r *http.Request, err error)

	// Observer, if set, hears about every decision of every rule, with the rule's name
	// and KeyClass (never the key): Allowed, Denied (the rules that denied), Failed (a
	// store error, whatever OnStoreError then did). A rule that would have admitted a
	// denied request, and took nothing, is not reported. Default nil: no clock reads.
	Observer ratelimit.Observer

	once     sync.Once
	compiled *compiled
	err      error
}

// Rule is one limit applied to the requests its Pattern matches.
type Rule struct {
	// Name identifies the rule in headers (RateLimit-Policy), problem bodies
	// ("violated-policies"), observer events, and store keys: rules with different names
	// never share state. It must be unique, printable ASCII, without '"' or '\'. Default:
	// KeyClass when Pattern is "", else Pattern.
	Name string

	// Limiter enforces the rule's limit with its algorithm and store. Default: the
	// Middleware's Limiter.
	Limiter *ratelimit.Limiter

	// Pattern selects the requests the rule applies to, in [http.ServeMux] syntax:
	// "GET /api/{id}", "/static/", "example.com/". Among patterned rules only those of
	// the most specific matching pattern apply, as in routing; several rules may share a
	// pattern. "/" matches what no other pattern does: it is the default rule. The empty
	// pattern (the default) applies to every request, in addition to any patterned rule.
	Pattern string

	// Key computes the key requests are limited by. Default: the client IP, per the
	// Middleware's ClientIP.
	Key KeyFunc

	// KeyClass names the kind of key, such as "ip", "user" or "api-key", for observer
	// events and metrics. Default "ip" when Key is nil, else "".
	KeyClass string

	// Cost computes how many units a request takes. Default: 1.
	Cost CostFunc

	// MissingKey says what happens when Key finds no usable key. Default
	// MissingKeyFallback.
	MissingKey MissingKeyPolicy
}

// Check decides whether r may proceed, taking the units of every rule that applies if
// they all admit it, and nothing otherwise. It is what Handler does before calling the
// next handler, without writing anything, for use in other frameworks and in tests.
//
// Rules whose Limiters share a store are decided in one atomic [ratelimit.TakeAll]: a
// request denied by one takes nothing from the others. When rules use different stores,
// each store is decided atomically in turn, in the order the stores first appear in
// Rules, stopping at the first denial. What can leak is exactly this: units taken from
// stores decided before the one that denied stay taken. Put the store of the narrowest
// limits first. A store that cannot decide several limits atomically (not a
// [ratelimit.BatchStore]) has every rule checked first and, if all admit, each taken in
// turn: only two requests racing between the check and the take can leak.
//
// Check allocates only the keys of the rules it decides, one string each, and what
// [http.ServeMux] allocates to match a pattern (for wildcards and subtree patterns); up to
// 8 rules per request are decided from fixed-size buffers.
//
// The error, also in Decision.Err, is nil when every rule was decided; otherwise it
// wraps the cause, and Decision.Status says what became of the request: [ErrNoKey] (400),
// [ratelimit.ErrInvalidCost] (413), [ratelimit.ErrClosed] or another store failure (503
// under FailClosed; under FailOpen the request is decided by the other stores' rules and
// the error is still returned), or an [ErrConfig] (500). Check does not call OnError or
// DenyHandler; it reports to the Observer.
func (m *Middleware) Check(r *http.Request) (Decision, error) {
	var d Decision
	m.decide(r, &d)
	return d, d.Err
}

// Validate checks the configuration (rule names, patterns, limits) and returns the
// error that would otherwise answer every request with 500. Call it at start-up.
func (m *Middleware) Validate() error {
	_, err := m.compile()
	return err
}

// Handler returns next guarded by m. An allowed request gets the rate-limit headers
// and goes to next; any other gets the headers, Retry-After on 429, and DenyHandler's
// response. Errors go to OnError first.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.Serve(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Serve does what [Middleware.Handler] does before the next handler: it decides r, reports
// an error to OnError, sets the rate-limit headers on w, and answers a denied request with
// the DenyHandler. It reports whether the request may proceed. It is the one entry point
// of framework adapters: they call it where their chain continues or stops.
func (m *Middleware) Serve(w http.ResponseWriter, r *http.Request) (proceed bool) {
	var d Decision
	m.decide(r, &d)
	if d.Err != nil && m.OnError != nil {
		m.OnError(r, d.Err)
	}
	m.setHeaders(w.Header(), &d)
	if d.Allowed {
		return true
	}
	m.deny(w, r, &d)
	return false
}

// deny answers a denied request with m's DenyHandler, [WriteProblem] when it is nil. It
// passes the handler a copy of d, so that only denials put a Decision on the heap.
func (m *Middleware) deny(w http.ResponseWriter, r *http.Request, d *Decision) {
	deny := m.DenyHandler
	if deny == nil {
		deny = WriteProblem
	}
	dd := new(Decision)
	*dd = *d
	deny(w, r, dd)
}
