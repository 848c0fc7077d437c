package grpclimit

import (
	"context"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Interceptor limits the calls of a gRPC server. Its exported fields configure it; the
// zero value with a Limiter limits every call by the client's IP address. Build the
// interceptors once, with [Interceptor.UnaryServerInterceptor] and
// [Interceptor.StreamServerInterceptor]: they read the configuration when built, and
// later changes to the fields do not affect them. The interceptors are safe for concurrent
// use.
type Interceptor struct {
	// Limiter is the limit of the implicit rule when Rules is empty (one rule named
	// "default" on the client's IP address, for every call), and of every rule whose own
	// Limiter is nil.
	Limiter *ratelimit.Limiter

	// Rules are the limits applied to calls. Rules without Methods apply to every call;
	// among the others, only the rules of the most specific pattern that matches the
	// call apply: the full method name, then the service prefix, then "/". Default
	// (empty): one rule named "default" on the client's IP address with Limiter.
	Rules []Rule

	// Exclude lists method patterns, as in [Rule.Methods], of calls no rule applies to,
	// such as "/grpc.health.v1.Health/". As for rules, the most specific pattern wins:
	// a rule on "/pkg.Service/Method" still applies to that method when "/pkg.Service/"
	// is excluded. An excluded call gets no rate-limit metadata. Default none.
	Exclude []string

	// ClientIP derives client addresses for rules with no Key and for the
	// MissingKeyFallback policy, with the httplimit package's type and rules: the peer's
	// address, grouped by IPv6Prefix (default 64) and IPv4Prefix (default 32); when the
	// peer is one of TrustedProxies, the rightmost untrusted address of the forwarding
	// metadata named by ProxyHeader (default "X-Forwarded-For", read as the metadata key
	// "x-forwarded-for", which Envoy sets). Default: the peer address, IPv6 by /64, no
	// trusted proxies, so forwarding metadata, which any client can send, is ignored.
	// A client whose forwarded address is malformed has no address.
	ClientIP httplimit.ClientIP

	// Headers selects the rate-limit metadata sent with responses, in the styles of the
	// httplimit package: [httplimit.HeadersIETF] (the default), [httplimit.HeadersLegacy],
	// [httplimit.HeadersBoth], [httplimit.HeadersDraft03], or [httplimit.HeadersNone],
	// with which allowed calls allocate nothing for metadata.
	Headers httplimit.HeaderStyle

	// OnStoreError decides what happens to a call when a store returns an error:
	// [ratelimit.FailOpen] lets it through as if the failed store's rules did not apply;
	// [ratelimit.FailClosed] fails it with codes.Unavailable. The zero value,
	// [ratelimit.FailLocal], means FailOpen here: the interceptor keeps no store to
	// answer locally from. [ratelimit.FailError] is a store's policy, a configuration
	// error here. A store with a fail policy of its own (redisstore) answers its
	// backend's outages itself and returns no error, so this policy never sees them; it
	// applies to a store configured with FailError, a closed store, a limit made invalid
	// by [ratelimit.Limiter.SetLimit], a custom store. Default FailOpen.
	OnStoreError ratelimit.FailPolicy

	// OnError, if set, hears about every error a call met: a store failure, a missing
	// key, a negative cost, a misconfiguration, whatever then became of the call. err
	// names the rule and wraps the cause. The package never logs: this is where to. It
	// is called synchronously, from the goroutine serving the call, and must be safe for
	// concurrent use. Default nil.
	OnError func(ctx context.Context, fullMethod string, err error)

	// Observer, if set, hears about every decision of every rule, with the rule's name
	// and KeyClass (never the key): Allowed, Denied (the rules that denied the call),
	// Failed (a store error, whatever OnStoreError then did). A rule that would have
	// admitted a denied call, and took nothing, is not reported. Default nil: no clock
	// reads.
	Observer ratelimit.Observer
}

// Rule is one limit applied to the calls whose method it matches.
type Rule struct {
	// Name identifies the rule in metadata (ratelimit-policy), status details
	// (QuotaFailure), observer events and store keys: rules with different names never
	// share state, and renaming a rule starts its keys afresh. It must be unique, 1 to
	// 64 bytes of printable ASCII without '"' or '\'. Default: KeyClass when Methods is
	// empty, else the Methods joined by ",".
	Name string

	// Limiter enforces the rule's limit with its algorithm and store. Default: the
	// Interceptor's Limiter.
	Limiter *ratelimit.Limiter

	// Methods are the patterns of the calls the rule applies to: a full method name such
	// as "/pkg.Service/Method"; a service, "/pkg.Service/", for its methods that no rule
	// names in full; or "/", for the calls no other pattern matches (the default rule).
	// The methods of one rule share its keys: with Methods {A, B} and the client IP as key,
	// a client's calls to A and B draw from one budget. Default none: every call, in
	// addition to the rules of any matching pattern.
	Methods []string

	// Key computes the key calls are limited by. Default: the client IP address, per
	// [Interceptor.ClientIP].
	Key KeyFunc

	// KeyClass names the kind of key, such as "ip", "api_key" or "user", for observer
	// events and metrics. Default "ip" when Key is nil, else "".
	KeyClass string

	// Cost returns the units a call costs; req is the request message of a unary call,
	// nil when a stream opens, and each received message for PerMessage rules. A cost of
	// 0 checks the call against the limit without taking anything. A cost above the
	// limit's capacity fails the call with codes.ResourceExhausted and no RetryInfo, since
	// it could never pass; a negative cost is a bug in the CostFunc, a configuration
	// error: the call fails with codes.Internal. Default: every call costs 1.
	Cost CostFunc

	// MissingKey says what happens when Key finds no usable key. Default
	// [MissingKeyFallback].
	MissingKey MissingKeyPolicy

	// PerMessage makes the rule charge each message the client sends on a stream, when
	// it is received, instead of the stream's opening. Unary calls are charged once
	// either way. Default false.
	PerMessage bool
}

// Validate reports whether the configuration is valid: every rule has a Limiter with a
// store and a valid limit, a unique valid name, and valid method patterns. The errors
// wrap [ErrConfig]. The interceptors of an invalid configuration fail every call with
// codes.Internal and report the error to OnError: call Validate at start-up to fail there
// instead.
func (in Interceptor) Validate() error {
	_, err := in.compile()
	return err
}

// UnaryServerInterceptor returns the interceptor that limits unary calls.
func (in Interceptor) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	c, err := in.compile()
	if err != nil {
		return func(ctx context.Context, _ any, info *grpc.UnaryServerInfo, _ grpc.UnaryHandler) (any, error) {
			return nil, configError(ctx, in.OnError, info.FullMethod, err)
		}
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		v, err := c.check(ctx, info.FullMethod, req, phaseCall)
		if err != nil {
			if v.md != nil {
				_ = grpc.SetTrailer(ctx, v.md)
			}
			return nil, err
		}
		if v.md != nil {
			_ = grpc.SetHeader(ctx, v.md)
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns the interceptor that limits streams: once when a stream
// opens, and for each message received for rules with [Rule.PerMessage] set.
func (in Interceptor) StreamServerInterceptor() grpc.StreamServerInterceptor {
	c, err := in.compile()
	if err != nil {
		return func(_ any, ss grpc.ServerStream, info *grpc.StreamServerInfo, _ grpc.StreamHandler) error {
			return configError(ss.Context(), in.OnError, info.FullMethod, err)
		}
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		var ms *messageStream
		if c.hasPerMessage {
			// Find the PerMessage rules' keys first: a call without a key is rejected
			// before its opening is charged.
			ms = &messageStream{ServerStream: ss, c: c, method: info.FullMethod}
			if err := c.collect(ctx, info.FullMethod, phaseMessage, &ms.s); err != nil {
				return err
			}
		}
		v, err := c.check(ctx, info.FullMethod, nil, phaseOpen)
		if err != nil {
			if v.md != nil {
				ss.SetTrailer(v.md)
			}
			return err
		}
		if v.md != nil {
			_ = ss.SetHeader(v.md)
		}
		if ms != nil && len(ms.s.rules) > 0 {
			ss = ms
		}
		return handler(srv, ss)
	}
}

// messageStream charges the PerMessage rules for each message received. RecvMsg is not
// called concurrently on one stream, so its scratch needs no lock.
type messageStream struct {
	grpc.ServerStream
	c      *compiled
	method string
	s      scratch // the rules and keys found when the stream opened
}

// RecvMsg receives a message, then charges it to the stream's PerMessage rules. When
// they deny it, the message is dropped and RecvMsg returns the denial's status.
func (m *messageStream) RecvMsg(msg any) error {
	if err := m.ServerStream.RecvMsg(msg); err != nil {
		return err
	}
	v, err := m.c.take(m.ServerStream.Context(), m.method, msg, &m.s, false)
	if err != nil && v.md != nil {
		m.ServerStream.SetTrailer(v.md)
	}
	return err
}

// configError reports a configuration error and returns the status that fails the call.
func configError(ctx context.Context, onError func(context.Context, string, error), method string, err error) error {
	if onError != nil {
		onError(ctx, method, err)
	}
	return status.Error(codes.Internal, "grpclimit: invalid configuration")
}

// verdict is what a check tells the interceptor beside its error: the metadata to send.
type verdict struct {
	md metadata.MD
}
