// Package httplimit rate-limits net/http servers and clients.
//
// [Middleware] guards a handler, in the manner of [http.CrossOriginProtection]: a value
// with exported fields whose zero values are sensible, a Handler method, and a Check
// method that decides without writing a response.
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	mw := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(100))}
//	http.ListenAndServe(":8080", mw.Handler(mux))
//
// limits every client IP address to 100 requests a minute. [Transport] limits the other
// direction: the requests an [http.Client] sends.
//
// # Rules
//
// [Middleware.Rules] holds several limits. Each [Rule] has a name, a Limiter, a key
// ([KeyFunc]: client IP by default, or [Header], [ContextValue], [FromContext], [Route],
// [Global], [Composite], or any function), a cost ([CostFunc]), and a pattern in
// [http.ServeMux] syntax. Rules with no pattern apply to every request; among patterned
// rules, those of the most specific matching pattern apply, as in routing, and "/" is
// the default for requests no other pattern matches. [Middleware.Exclude] exempts
// patterns from every rule. Matching uses a real ServeMux, so "GET /api/{id}" means what
// it means to the router, HEAD matches GET, and an unclean path ("/api//x", "/a/../api/x")
// is limited as the path it would be redirected to.
//
// Keys are namespaced by rule name: two rules never share state, even on one store and one
// algorithm. A request whose key is missing or malformed follows the rule's
// [MissingKeyPolicy]: by default it is limited by its client IP instead, in a namespace of
// its own; it is never pooled with other keyless requests into one bucket.
//
// # Several limits, one decision
//
// A request is admitted only if every rule that applies admits it, and a denied request
// consumes nothing from any rule. Rules whose Limiters share a store are decided in one
// atomic [ratelimit.TakeAll]; across stores, see [Middleware.Check] for what can leak.
// Deciding allocates nothing beyond the keys themselves for up to 8 rules per request,
// and what [http.ServeMux] allocates to match patterns with wildcards.
//
// # Client addresses
//
// [ClientIP] reads the connection's peer address and ignores X-Forwarded-For, X-Real-IP
// and Forwarded unless the peer is one of [ClientIP.TrustedProxies]; it then walks the one
// configured header from the right and takes the first address that is not a trusted
// proxy. IPv6 clients are grouped by /64 by default.
//
// # Responses
//
// A denied request gets 429 Too Many Requests, a Retry-After header in whole seconds
// (rounded up), and an RFC 9457 application/problem+json body of type
// https://iana.org/assignments/http-problem-types#quota-exceeded whose
// "violated-policies" lists the rules that denied it. A cost above a rule's capacity gets
// 413 Content Too Large: it could never pass, so no Retry-After would be true. Replace the
// body with [Middleware.DenyHandler].
//
// # Headers
//
// Allowed and denied responses carry the values of the rule closest to exhaustion
// ([Decision.Limiting]). With [HeadersIETF] (the default), the structured fields of
// draft-ietf-httpapi-ratelimit-headers-10:
//
//	RateLimit-Policy: "default";q=100;w=60
//	RateLimit: "default";r=42;t=17
//
// RateLimit-Policy lists every rule decided for the request; RateLimit names the
// limiting rule. The mapping from a [ratelimit.Limit] and [ratelimit.Result]:
//
//   - q is the capacity: Rate for window algorithms, Burst (Rate when 0) for buckets.
//   - w is the time the limit takes to grant q units from nothing, q·Period/Rate, in
//     seconds rounded up, at least 1: the Period for window algorithms, the refill time
//     for buckets (100/min burst 10: q=10;w=6). The draft allows only whole seconds, so
//     for periods that are not (5 per 500ms: q=5;w=1) the advertised rate q/w is below
//     the real one: a client that follows it is never limited.
//   - r is Result.Remaining, the whole units left.
//   - t is, on allowed responses, Result.ResetAfter, the seconds until the key is back to
//     full capacity, rounded up: when the window ends, when the bucket is full. On a 429
//     it is Result.RetryAfter of the limiting rule, rounded up, and Retry-After carries
//     the same number, so Retry-After never points earlier than t.
//
// With [HeadersLegacy], X-RateLimit-Limit carries q, X-RateLimit-Remaining r and
// X-RateLimit-Reset t, in seconds from now (not a Unix time: no clock synchronisation
// needed); [HeadersDraft03] sends the same values as RateLimit-Limit, RateLimit-Remaining
// and RateLimit-Reset, as envoyproxy/ratelimit does. [HeadersBoth] sends the IETF and
// legacy sets, [HeadersNone] none. Integers are capped at the
// structured-field maximum, 999999999999999.
//
// # Failures
//
// A store with a fail policy of its own, such as redisstore's default of answering from
// a local in-memory limit, decides its backend's outages itself and returns no error.
// When a store does return one (a store configured with [ratelimit.FailError], a closed
// store), [Middleware.OnStoreError] decides: [ratelimit.FailOpen], the default, lets the
// request through as if that store's rules did not apply; [ratelimit.FailClosed] answers 503. Either
// way the error reaches [Middleware.OnError] and the [ratelimit.Observer] (Outcome
// Failed). The library never logs.
//
// # Environment
//
// [FromEnv] configures a Middleware, every limit per client IP, from these variables:
//
//	RATELIMIT_DEFAULT          limit for requests no route matches, in ratelimit.ParseLimit
//	                           syntax: "100/minute", "10/s burst 20"
//	RATELIMIT_ROUTES           names of routes with their own limit: "api login"
//	RATELIMIT_ROUTE_<NAME>     "<pattern> <limit>" for each listed name, the name in upper
//	                           case: RATELIMIT_ROUTE_LOGIN="POST /login 5/m"
//	RATELIMIT_EXCLUDE          comma-separated patterns no limit applies to: "/healthz, GET /static/"
//	RATELIMIT_ALGORITHM        fixed_window, sliding_window_log, sliding_window_counter,
//	                           token_bucket, leaky_bucket or gcra; default gcra
//	RATELIMIT_TRUSTED_PROXIES  comma-separated addresses and prefixes of reverse proxies
//	RATELIMIT_PROXY_HEADER     header the proxies set; default X-Forwarded-For
//	RATELIMIT_IPV6_PREFIX      prefix length IPv6 clients are grouped by; default 64
//	RATELIMIT_HEADERS          ietf, legacy, both, none or draft03; default ietf
//	RATELIMIT_FAIL             open or closed; default open
//
// Route names become rule names in lower case. Routes are listed in RATELIMIT_ROUTES
// because a getenv function cannot enumerate variables.
package httplimit
