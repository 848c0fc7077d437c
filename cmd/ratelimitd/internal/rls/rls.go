// Package rls serves the Envoy rate limit service API,
// envoy.service.ratelimit.v3.RateLimitService, over gRPC, and converts its messages to and
// from the engine's. The JSON endpoint reuses the conversion.
package rls

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// Service implements rlsv3.RateLimitServiceServer over an engine, and reports each
// request's outcome to the engine's Observer as transport "grpc".
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer
	Engine *engine.Engine
}

var _ rlsv3.RateLimitServiceServer = (*Service)(nil)

// ShouldRateLimit decides req. A malformed request is InvalidArgument; a store that could
// not decide (only with a fail policy that reports errors) is Unavailable, which Envoy
// answers by its failure_mode_deny setting.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	resp, o, err := Decide(ctx, s.Engine, req)
	s.Engine.Served("grpc", o)
	if err != nil {
		if o == engine.OutcomeInvalid {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return resp, nil
}

// Decide converts req, decides it on e and converts the answer, with the request's
// outcome.
func Decide(ctx context.Context, e *engine.Engine, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, engine.Outcome, error) {
	r := Request(req)
	resp, err := e.Decide(ctx, &r)
	if err != nil {
		return nil, engine.ErrorOutcome(err), err
	}
	return Response(resp), resp.Outcome(), nil
}

// Request converts an RLS request to the engine's as it is: the engine validates it. The
// request is already decoded, bounded by the transport's message size, so converting it
// before the caps are checked costs at most what decoding it did.
func Request(req *rlsv3.RateLimitRequest) engine.Request {
	r := engine.Request{Domain: req.GetDomain(), Hits: uint64(req.GetHitsAddend())}
	r.Descriptors = make([]engine.Descriptor, len(req.GetDescriptors()))
	for i, d := range req.GetDescriptors() {
		es := d.GetEntries()
		ed := &r.Descriptors[i]
		ed.NegativeHits = d.GetIsNegativeHits()
		ed.Entries = make([]rules.Entry, len(es))
		for j, e := range es {
			ed.Entries[j] = rules.Entry{Key: e.GetKey(), Value: e.GetValue()}
		}
		if h := d.GetHitsAddend(); h != nil {
			ed.Hits, ed.HasHits = h.GetValue(), true
		}
		if o := d.GetLimit(); o != nil {
			ed.Override = override(o)
		}
	}
	return r
}

func override(o *rlv3.RateLimitDescriptor_RateLimitOverride) *engine.Override {
	ov := &engine.Override{
		RequestsPerUnit: o.GetRequestsPerUnit(),
		// envoy.type.v3.RateLimitUnit numbers its units as the response enum does.
		Unit: rules.Unit(o.GetUnit()),
	}
	if m := o.GetUnitMultiplier(); m != nil {
		ov.Multiplier = m.GetValue()
	}
	return ov
}

// Response converts the engine's answer to an RLS response.
func Response(resp *engine.Response) *rlsv3.RateLimitResponse {
	out := &rlsv3.RateLimitResponse{
		OverallCode: code(resp.Code),
		Statuses:    make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(resp.Statuses)),
	}
	for i := range resp.Statuses {
		st := &resp.Statuses[i]
		ds := &rlsv3.RateLimitResponse_DescriptorStatus{Code: code(st.Code), LimitRemaining: st.Remaining}
		if r := st.Rule; r != nil {
			ds.CurrentLimit = &rlsv3.RateLimitResponse_RateLimit{
				Name: r.Name, RequestsPerUnit: r.RequestsPerUnit, Unit: r.Unit,
			}
			ds.DurationUntilReset = durationpb.New(st.ResetAfter)
		}
		out.Statuses[i] = ds
	}
	if len(resp.Headers) > 0 {
		out.ResponseHeadersToAdd = make([]*corev3.HeaderValue, len(resp.Headers))
		for i, h := range resp.Headers {
			out.ResponseHeadersToAdd[i] = &corev3.HeaderValue{Key: h.Name, Value: h.Value}
		}
	}
	return out
}

func code(c engine.Code) rlsv3.RateLimitResponse_Code {
	if c == engine.OverLimit {
		return rlsv3.RateLimitResponse_OVER_LIMIT
	}
	return rlsv3.RateLimitResponse_OK
}
