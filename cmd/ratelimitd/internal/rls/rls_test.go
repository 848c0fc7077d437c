package rls

import (
	"context"
	"fmt"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
)

const testRules = `
domain: d
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 1000000000}
  - key: plan
    value: free
    rate_limit: {unit: minute, requests_per_unit: 2, name: free}
`

func newService(t testing.TB) *Service {
	set := rulestest.Compile(t, testRules)
	store := memorystore.New(nil)
	t.Cleanup(func() { store.Close() })
	return &Service{Engine: engine.New(store, set, nil)}
}

func desc(kv ...string) *rlv3.RateLimitDescriptor {
	d := &rlv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &rlv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func TestConversion(t *testing.T) {
	s := newService(t)
	over := desc("plan", "free")
	over.Limit = &rlv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 1, Unit: 2, UnitMultiplier: wrapperspb.UInt32(5)}
	req := &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlv3.RateLimitDescriptor{desc("user", "a"), desc("nothing", "x"), over}}
	resp, err := s.ShouldRateLimit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Statuses) != 3 {
		t.Fatalf("%d statuses, want 3 in request order", len(resp.Statuses))
	}
	if st := resp.Statuses[0]; st.CurrentLimit.GetRequestsPerUnit() != 1e9 || st.CurrentLimit.GetUnit() != rlsv3.RateLimitResponse_RateLimit_SECOND || st.DurationUntilReset == nil {
		t.Errorf("status 0: %v, want 1e9 per SECOND with a reset", st)
	}
	if st := resp.Statuses[1]; st.CurrentLimit != nil || st.DurationUntilReset != nil || st.Code != rlsv3.RateLimitResponse_OK {
		t.Errorf("status 1 (no rule): %v, want OK without limit or reset", st)
	}
	if st := resp.Statuses[2]; st.CurrentLimit.GetRequestsPerUnit() != 1 || st.CurrentLimit.GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE || st.LimitRemaining != 0 {
		t.Errorf("status 2 (override 1 per 5 minutes): %v", st)
	}
	if d := resp.Statuses[2].DurationUntilReset.AsDuration(); d.Minutes() > 5 || d <= 0 {
		t.Errorf("override reset %v, want within the 5-minute window", d)
	}
}

// TestInvalid: the engine's validation answers for the RLS API, InvalidArgument with the
// engine's message.
func TestInvalid(t *testing.T) {
	s := newService(t)
	neg := desc("user", "a")
	neg.IsNegativeHits = true
	many := make([]*rlv3.RateLimitDescriptor, engine.MaxDescriptors+1)
	for i := range many {
		many[i] = desc("user", "a")
	}
	for _, tc := range []struct {
		name string
		req  *rlsv3.RateLimitRequest
		want string
	}{
		{"negative hits", &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlv3.RateLimitDescriptor{desc("user", "a"), neg}}, "invalid request: descriptor 1: negative hits (returning units) are not supported"},
		{"too many descriptors", &rlsv3.RateLimitRequest{Domain: "d", Descriptors: many}, "invalid request: 65 descriptors, at most 64 are allowed"},
		{"no domain", &rlsv3.RateLimitRequest{Descriptors: []*rlv3.RateLimitDescriptor{desc("user", "a")}}, "invalid request: rate limit domain must not be empty"},
	} {
		_, err := s.ShouldRateLimit(context.Background(), tc.req)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != tc.want {
			t.Errorf("%s: got %v, want InvalidArgument %q", tc.name, err, tc.want)
		}
	}
}

// BenchmarkShouldRateLimit measures a one-descriptor decision on the memory store,
// conversion included, without the network.
func BenchmarkShouldRateLimit(b *testing.B) {
	s := newService(b)
	reqs := make([]*rlsv3.RateLimitRequest, 10000)
	for i := range reqs {
		reqs[i] = &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlv3.RateLimitDescriptor{desc("user", fmt.Sprint("u", i))}}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.ShouldRateLimit(context.Background(), reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
