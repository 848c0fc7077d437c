// Package grpclimit rate-limits gRPC servers with unary and stream interceptors.
//
// The zero [Interceptor] with a Limiter limits every call by the peer's IP address:
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	in := grpclimit.Interceptor{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(10))}
//	srv := grpc.NewServer(
//		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
//		grpc.StreamInterceptor(in.StreamServerInterceptor()),
//	)
//
// It mirrors the httplimit package: the same rules, key policies, fail policies, header
// values and observer events, in gRPC's terms.
//
// # Rules
//
// [Interceptor.Rules] holds several limits. Each [Rule] has a name, a Limiter, a key
// ([KeyFunc]: the peer's IP address by default, or [PeerPrefix], [Metadata],
// [FullMethod], [Composite], or any function), a cost ([CostFunc], which sees the request
// message), and method patterns: "/pkg.Service/Method", "/pkg.Service/" or "/". Rules
// without patterns apply to every call; among patterned rules, only those of the most
// specific pattern that matches the call apply (the method named in full, then its
// service, then "/", the default for calls no other pattern matches).
// [Interceptor.Exclude] exempts patterns from every rule.
//
// Rules without a Key are limited by the client's address: the peer's, or, when the peer
// is a trusted proxy, the one it forwards in metadata ([Interceptor.ClientIP], the
// httplimit package's type, with its rules). IPv6 clients are grouped by /64.
//
// Keys are namespaced by rule name: two rules never share state, even on one store and
// one algorithm. A rule with the same name and key in httplimit shares its state, so one
// budget can cover a service's HTTP and gRPC faces. A call whose key is missing, empty or
// longer than 4096 bytes follows the rule's [MissingKeyPolicy]: by default it is limited
// by its peer's IP address instead, in a namespace of its own; it is never pooled with
// other keyless calls into one bucket.
//
// # Several limits, one decision
//
// A call is admitted only if every rule that applies admits it, and a denied call
// consumes nothing from any rule: rules whose Limiters share a store are decided in one
// atomic [ratelimit.TakeAll]. When rules use different stores, each store is decided in
// turn, in the order the stores first appear in Rules, stopping at the first denial;
// units taken from the stores decided before the one that denied stay taken, so put the
// store of the narrowest limits first. A store that cannot decide several limits
// atomically (not a [ratelimit.BatchStore]) has every rule checked first and, if all
// admit, each taken in turn: only calls racing between check and take can leak. A cost
// of 0 checks a rule without taking; a negative cost is a configuration error
// (codes.Internal). The decision is the httplimit package's, made by the same code;
// only the transport differs. Deciding allocates nothing
// beyond the keys themselves (one string per rule) when metadata is off; see
// [httplimit.HeadersNone].
//
// # Denials
//
// A denied call fails with codes.ResourceExhausted. Its status carries a
// google.rpc.RetryInfo detail, whose retry_delay is the exact wait before the same call
// can pass (the longest among the rules that denied it), and a google.rpc.QuotaFailure
// detail whose violation subject is "rule:<name>". A call whose cost exceeds a rule's
// capacity could never pass: it fails with codes.ResourceExhausted and no RetryInfo, so
// clients that honour RetryInfo do not retry it. A call without a usable key under
// [MissingKeyReject] fails with codes.InvalidArgument.
//
// # Metadata
//
// Allowed calls carry the rate-limit state in the response header, denied calls in the
// trailer, beside the status; a denial also carries retry-after, in whole seconds rounded
// up. The values are those of the rule closest to exhaustion: on a denial, the denying
// rule with the longest wait; otherwise the rule with the smallest share of its capacity
// left. With [httplimit.HeadersIETF] (the default), the structured fields of
// draft-ietf-httpapi-ratelimit-headers-10:
//
//	ratelimit-policy: "per-ip";q=100;w=60, "per-key";q=10;w=6
//	ratelimit: "per-key";r=4;t=4
//
// ratelimit-policy lists every rule decided for the call, in the order of Rules;
// ratelimit names the limiting rule. The mapping from a [ratelimit.Limit] and
// [ratelimit.Result]:
//
//   - q is the capacity: Rate for window algorithms, Burst (Rate when 0) for buckets.
//   - w is the time the limit takes to grant q units from nothing, q·Period/Rate, in
//     seconds rounded up, at least 1: the Period for window algorithms, the refill time
//     for buckets (100/min burst 10: q=10;w=6).
//   - r is Result.Remaining, the whole units left.
//   - t is, on allowed calls, Result.ResetAfter, the seconds until the key is back to
//     full capacity, rounded up. On a denial it is the limiting rule's RetryAfter,
//     rounded up, the same number as retry-after.
//
// With [httplimit.HeadersLegacy], x-ratelimit-limit carries q, x-ratelimit-remaining r
// and x-ratelimit-reset t; [httplimit.HeadersDraft03] sends the same values as
// ratelimit-limit, ratelimit-remaining and ratelimit-reset. [httplimit.HeadersBoth]
// sends the IETF and legacy sets, [httplimit.HeadersNone] none.
//
// # Streams
//
// A stream costs its rules' cost once, when it opens, with a nil request. A rule with
// [Rule.PerMessage] set charges instead every message the client sends, after it is
// received, at the cost its CostFunc gives that message: when it is denied, RecvMsg drops
// the message and returns the ResourceExhausted status, and the stream's trailer carries
// the metadata; the handler normally returns that error, which ends the stream. The keys
// of PerMessage rules are found when the stream opens, and a missing one is handled
// there. Messages the server sends are never charged.
//
// # Failures
//
// A store with a fail policy of its own, such as redisstore's default of answering from
// a local in-memory limit, decides its backend's outages itself and returns no error:
// [Interceptor.OnStoreError] sees only the errors a store does return (Redis with the
// FailError policy, a closed store, a limit made invalid by
// [ratelimit.Limiter.SetLimit]). For those, [ratelimit.FailOpen], the default, lets the
// call through as if that store's rules did not apply; [ratelimit.FailClosed] fails it
// with codes.Unavailable. Either
// way the error reaches [Interceptor.OnError] and the [ratelimit.Observer] (Outcome
// Failed). A call whose context has ended fails with the context's status (Canceled or
// DeadlineExceeded) whatever the policy. An invalid configuration fails every call with
// codes.Internal; [Interceptor.Validate] reports it at start-up.
//
// The package never logs, and nothing in it panics.
package grpclimit
