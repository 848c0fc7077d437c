package grpclimit

import (
	"context"

	"github.com/go-ratelimit/ratelimit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Interceptor limits the calls of a gRPC server. Its exported fields configure it; the
// zero value with a Limiter limits every call by the peer's IP address. Build the
// interceptors once, with [Interceptor.UnaryServerInterceptor] and
// [Interceptor.StreamServerInterceptor]: they read the configuration when built, and
// later changes to the fields do not affect them. The interceptors are safe for concurrent
// use.
type Interceptor struct {
	// Limiter is the default rule, named "default", applied to the calls that no rule of
	// Rules matches, keyed by [PeerIP] with key class "ip". Nil means calls that no rule
	// matches are not limited. To apply a limit to every call in addition to the rules,
	// add a Rule without Methods.
	Limiter *ratelimit.Limiter

	// Rules are the per-method limits. Every rule that matches a call applies. Default
	// none.
	Rules []Rule

	// Exclude lists method patterns (as in [Rule.Methods]) that are never limited, such
	// as "/grpc.health.v1.Health/". Default none.
	Exclude []string

	// FailPolicy decides what happens to a call when a store fails. Default [FailOpen].
	FailPolicy FailPolicy

	// Headers selects the rate-limit metadata sent with responses. Default [HeadersAll].
	Headers HeaderMode

	// Observer, if set, hears about every rule's decision: the rule's name and key class,
	// the outcome and the time spent in the store. On a denied call, only the rules that
	// denied it are reported: the others decided nothing. Default nil.
	Observer ratelimit.Observer

	// OnError, if set, is called with every store failure and configuration error, from
	// the goroutine serving the call, before the call goes on under FailPolicy. err names
	// the rule and wraps the store's error. It must be safe for concurrent use. Default nil.
	OnError func(ctx context.Context, fullMethod string, err error)
}

// Rule is one limit applied to the calls whose method it matches.
type Rule struct {
	// Name identifies the rule in keys, metadata and observer events. Keys are namespaced
	// by it, so renaming a rule starts its keys afresh. It must be unique among the rules,
	// at most 64 bytes of printable ASCII, and must not be "default" when
	// [Interceptor.Limiter] is set. Default "rule<i>", i its index in Rules.
	Name string

	// Limiter decides the rule: its store, algorithm and current limit. Required.
	Limiter *ratelimit.Limiter

	// Methods lists the methods the rule applies to: a full method name such as
	// "/pkg.Service/Method" matches that method; a pattern ending in "/", such as
	// "/pkg.Service/", matches every method of the service. Default none: every method.
	Methods []string

	// Key finds the call's key. Default [PeerIP].
	Key KeyFunc

	// KeyClass names the kind of key for observers, such as "ip", "api_key" or "user".
	// Default "ip" when Key is nil, else "".
	KeyClass string

	// Cost returns the units a call costs; req is the request message of a unary call,
	// nil when a stream opens, and the received message for PerMessage rules. A cost of 0
	// exempts the call from the rule. A cost above the limit's capacity fails the call
	// with codes.ResourceExhausted and no RetryInfo; a negative cost is a failure handled
	// by [Interceptor.FailPolicy]. Default: every call costs 1.
	Cost CostFunc

	// MissingKey decides what happens to a call for which Key finds no key. Default
	// [RejectMissingKey].
	MissingKey MissingKeyPolicy

	// PerMessage makes the rule charge each message the client sends on a stream, when
	// it is received, instead of the stream's opening. Unary calls are charged once
	// either way. Default false.
	PerMessage bool
}

// CostFunc returns the units a call costs under a rule. It must be safe for concurrent use.
type CostFunc func(ctx context.Context, fullMethod string, req any) int

// MissingKeyPolicy decides what happens to a call for which a rule finds no key.
type MissingKeyPolicy uint8

const (
	// RejectMissingKey fails the call with codes.InvalidArgument. It is the default: a
	// call without a key has nothing to be limited by, and pooling all such calls in one
	// bucket would let one client exhaust it for everyone.
	RejectMissingKey MissingKeyPolicy = iota

	// SkipMissingKey exempts the call from the rule: it is not limited by it.
	SkipMissingKey

	// PoolMissingKey limits all calls without a key together, under the key
	// "<missing>" of the rule: one shared bucket, chosen explicitly.
	PoolMissingKey
)

// FailPolicy decides what happens to a call when a store fails.
type FailPolicy uint8

const (
	// FailOpen lets the call through as if the failing rules were absent. It is the
	// default: the limiter protects the service; it should not take it down with it.
	FailOpen FailPolicy = iota

	// FailClosed fails the call with codes.Unavailable.
	FailClosed
)

// HeaderMode selects the rate-limit metadata sent with responses.
type HeaderMode uint8

const (
	// HeadersAll sends the common fields (ratelimit-limit, ratelimit-remaining,
	// ratelimit-reset) and the IETF ones (ratelimit-policy, ratelimit). The default.
	HeadersAll HeaderMode = iota

	// HeadersCommon sends ratelimit-limit, ratelimit-remaining and ratelimit-reset.
	HeadersCommon

	// HeadersIETF sends the structured fields ratelimit-policy and ratelimit.
	HeadersIETF

	// HeadersNone sends no rate-limit metadata, except retry-after on denials. Allowed
	// calls then cost no allocation for metadata.
	HeadersNone
)

// Check reports whether the configuration is valid: every rule has a limiter with a
// store, a valid name and valid method patterns. The interceptors of an invalid
// configuration fail every call with codes.Internal and report the error to OnError;
// call Check at start-up to fail there instead.
func (in Interceptor) Check() error {
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
