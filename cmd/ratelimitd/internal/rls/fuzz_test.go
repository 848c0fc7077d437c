package rls

import (
	"context"
	"errors"
	"testing"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
)

// FuzzShouldRateLimit: any request the wire can carry gets an answer or an error, never a
// panic, and an answer has one status per descriptor.
func FuzzShouldRateLimit(f *testing.F) {
	for _, req := range []*rlsv3.RateLimitRequest{
		{Domain: "d", Descriptors: []*rlv3.RateLimitDescriptor{desc("user", "a")}},
		{Domain: "d", HitsAddend: 3, Descriptors: []*rlv3.RateLimitDescriptor{desc("plan", "free"), desc("user", "b")}},
		{Domain: "d", Descriptors: []*rlv3.RateLimitDescriptor{{
			Entries:    desc("user", "c").Entries,
			HitsAddend: wrapperspb.UInt64(1 << 40),
			Limit:      &rlv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 7, Unit: 6, UnitMultiplier: wrapperspb.UInt32(1 << 31)},
		}}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := newService(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req rlsv3.RateLimitRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		resp, o, err := Decide(context.Background(), s.Engine, &req)
		if err != nil {
			if o != engine.OutcomeInvalid && o != engine.OutcomeError || errors.Is(err, context.Canceled) {
				t.Fatalf("error %v with outcome %v", err, o)
			}
			return
		}
		if over := resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT; over != (o == engine.OutcomeOverLimit) || !over && o != engine.OutcomeOK {
			t.Fatalf("outcome %v for a response of code %v", o, resp.OverallCode)
		}
		if len(resp.Statuses) != len(req.Descriptors) {
			t.Fatalf("%d statuses for %d descriptors", len(resp.Statuses), len(req.Descriptors))
		}
	})
}
