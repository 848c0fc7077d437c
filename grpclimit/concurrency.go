package grpclimit

import (
	"context"
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Concurrency limits the calls a gRPC server handles at once with a
// [concurrency.Limiter], whose limit adapts to the server's capacity. A call over the
// limit fails with codes.Unavailable and the trailer grpc-retry-pushback-ms.
//
// Unavailable, not ResourceExhausted: the server as a whole is out of capacity for the
// moment, which is what Unavailable means ("most likely a transient condition, which can
// be corrected by retrying with a backoff"), and what clients with a gRPC retry policy
// retry, on another replica when they balance over several, which is what shedding
// wants. ResourceExhausted says the caller used up a quota of its own; the rate-limit
// [Interceptor] answers that, so the two refusals stay distinct for clients and
// dashboards.
//
// A unary call is timed from the moment the handler is called to the moment it returns,
// and its outcome classified by Classify. A stream holds a slot while it is open, but
// tells the limiter nothing of its latency, a stream's lifetime being no measure of load.
//
// Chain it after the rate-limit Interceptor, so calls over a client's rate limit are
// refused before they take a slot. The zero value, or one with a nil Limiter, passes
// every call through. Its fields must not change once the interceptors are built.
type Concurrency struct {
	// Limiter decides admission. Default nil: no limit.
	Limiter *concurrency.Limiter

	// Partition, if set, names the partition of the Limiter a call belongs to (see
	// [concurrency.Options.Partitions]). Default nil: no partition.
	Partition func(ctx context.Context, fullMethod string) string

	// Classify says what a unary call's outcome tells the Limiter, from the handler's
	// error. Default [ClassifyCode].
	Classify func(ctx context.Context, fullMethod string, err error) concurrency.Outcome

	// RetryAfter is the pushback a refused call carries in grpc-retry-pushback-ms.
	// Default 1s.
	RetryAfter time.Duration
}

// ClassifyCode is the default classification of [Concurrency.Classify]: the codes
// DeadlineExceeded, Unavailable and ResourceExhausted are [concurrency.Dropped] (signs
// of overload, here or downstream), Canceled is [concurrency.Ignored] (the client went
// away), and anything else, errors included, is [concurrency.Success].
func ClassifyCode(_ context.Context, _ string, err error) concurrency.Outcome {
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable, codes.ResourceExhausted:
		return concurrency.Dropped
	case codes.Canceled:
		return concurrency.Ignored
	}
	return concurrency.Success
}

func (c *Concurrency) acquire(ctx context.Context, method string) (concurrency.Token, error) {
	var tok concurrency.Token
	var err error
	if c.Partition != nil {
		tok, err = c.Limiter.Partition(c.Partition(ctx, method)).Acquire(ctx)
	} else {
		tok, err = c.Limiter.Acquire(ctx)
	}
	if err != nil {
		return tok, status.FromContextError(err).Err()
	}
	if !tok.Allowed() {
		pushback := c.RetryAfter
		if pushback <= 0 {
			pushback = time.Second
		}
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", strconv.FormatInt(pushback.Milliseconds(), 10)))
		return tok, status.Errorf(codes.Unavailable, "server overloaded: %s", tok.Reason())
	}
	return tok, nil
}

// UnaryServerInterceptor returns the interceptor that limits unary calls.
func (c *Concurrency) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	classify := c.Classify
	if classify == nil {
		classify = ClassifyCode
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if c.Limiter == nil {
			return handler(ctx, req)
		}
		tok, err := c.acquire(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		outcome := concurrency.Dropped // if handler panics
		defer func() { tok.Release(outcome) }()
		resp, err := handler(ctx, req)
		outcome = classify(ctx, info.FullMethod, err)
		return resp, err
	}
}

// StreamServerInterceptor returns the interceptor that limits open streams.
func (c *Concurrency) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if c.Limiter == nil {
			return handler(srv, ss)
		}
		tok, err := c.acquire(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		defer tok.Release(concurrency.Ignored)
		return handler(srv, ss)
	}
}
