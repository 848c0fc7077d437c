// Package grpclimit limits gRPC calls on the server with unary and stream interceptors.
//
// The zero [Interceptor] with a Limiter limits every call by the peer's IP address:
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(10))
//	in := grpclimit.Interceptor{Limiter: lim}
//	srv := grpc.NewServer(
//		grpc.UnaryInterceptor(in.UnaryServerInterceptor()),
//		grpc.StreamInterceptor(in.StreamServerInterceptor()),
//	)
//
// # Rules
//
// [Interceptor.Rules] limit calls by method (a full method name such as
// "/pkg.Service/Method", or a service prefix such as "/pkg.Service/"), each with its own
// limiter, key, key class and cost. Every rule that matches a call applies, and the call
// passes only if all of them allow it. The rules of one call that share a store are decided
// with one [ratelimit.TakeAll]: a call denied by one of them consumes nothing from the
// others. [Interceptor.Limiter] is the default rule, for calls that no rule matches.
//
// # Keys
//
// A [KeyFunc] finds a call's key: [PeerIP] (the default: the peer's IP address, IPv6
// addresses grouped by /64), [PeerPrefix], [Metadata] (a request metadata value such as an
// API key), [FullMethod], [Composite], or any function. Keys are namespaced by rule, so two
// rules never share a counter. A call without a key, or with a key longer than
// [ratelimit.MaxKeyLen], is handled by its rule's [MissingKeyPolicy]: by default it is
// rejected with codes.InvalidArgument, never silently pooled with other keyless calls.
//
// # Denials and metadata
//
// A denied call fails with codes.ResourceExhausted, whose status carries a
// google.rpc.RetryInfo detail (retry_delay: the exact wait before the same call can pass)
// and a google.rpc.QuotaFailure detail naming the rule. A call whose cost exceeds a rule's
// capacity can never pass: it fails with codes.ResourceExhausted and no RetryInfo, so
// clients that honour RetryInfo do not retry it.
//
// Unless [Interceptor.Headers] says otherwise, responses carry the rate-limit state as
// metadata: in the response header of allowed calls, in the trailer of denied ones.
//
//	ratelimit-limit      the capacity: the most units the key can hold (Burst, or Rate)
//	ratelimit-remaining  the units still available after this call
//	ratelimit-reset      seconds, rounded up, until the key is back to full capacity
//	ratelimit-policy     the IETF structured field, "name";q=<Rate>;w=<Period in seconds>
//	ratelimit            the IETF structured field, "name";r=<remaining>;t=<reset>
//	retry-after          on denials only: seconds, rounded up, before the call can pass
//
// The values describe one rule: on an allowed call, the one with the fewest units
// remaining; on a denied call, the denying rule with the longest wait.
//
// # Streams
//
// A stream costs its rules' cost once, when it is opened, with a nil request. A rule with
// [Rule.PerMessage] set charges instead every message the client sends, after it is
// received: when it is denied, RecvMsg returns the ResourceExhausted status (the message is
// dropped) and the stream's trailer carries the metadata; the handler normally returns that
// error, which ends the stream. Messages the server sends are never charged.
//
// # Failures
//
// When a store fails (Redis down, a closed store, an invalid limit), [Interceptor.FailPolicy]
// decides: [FailOpen], the default, lets the call through as if the failing rules were
// absent; [FailClosed] fails it with codes.Unavailable. Either way the error reaches
// [Interceptor.OnError] and the [ratelimit.Observer] as an event with Outcome
// [ratelimit.Failed]. A call whose context has ended fails with the context's status
// (Canceled or DeadlineExceeded) whatever the policy.
//
// The package never logs; nothing in it panics.
package grpclimit
