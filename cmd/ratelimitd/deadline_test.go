package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// TestRedisStallBehindShortDeadline: callers with Envoy's default 20ms timeout and a
// Redis stopped (SIGSTOP) for 3 seconds. Every call is answered by the local policy
// within its deadline, about as reliably as a service on the memory store answers the
// same calls interleaved with them (on a loaded machine either misses a deadline now and
// then, which is why the two are compared, with a margin of 5% of the calls), the breaker
// opens and the outage is logged. internal/failover's TestCallerDeadline checks the bound
// itself on fake time.
func TestRedisStallBehindShortDeadline(t *testing.T) {
	const deadline = 20 * time.Millisecond
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	s := start(t, nil, "-config", dir, "-store", "redis://"+r.Addr())
	control := start(t, nil, "-config", dir)
	call := func(s *service, i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		resp, err := s.client.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{
			Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", fmt.Sprint("u", i))}},
		})
		if err == nil && resp.OverallCode != rlsv3.RateLimitResponse_OK {
			t.Fatalf("call %d: %v, want OK", i, resp.OverallCode)
		}
		return err
	}
	for _, s := range []*service{s, control} {
		s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "warm")}) // connects, loads the script
	}
	r.Pause()
	stalled := time.Now()
	var calls, failed, controlFailed int
	var firstErr error
	for time.Since(stalled) < 3*time.Second {
		if err := call(s, calls); err != nil {
			failed++
			firstErr = err
		}
		if call(control, calls) != nil {
			controlFailed++
		}
		calls++
	}
	r.Resume()
	t.Logf("%d calls with a %v deadline during a 3s Redis stall: %d failed (%v); on the memory store %d", calls, deadline, failed, firstErr, controlFailed)
	if failed > max(2*controlFailed+5, calls/20) {
		t.Errorf("%d of %d calls with a %v deadline failed during the stall (%v), %d on the memory store; want them answered by policy",
			failed, calls, deadline, firstErr, controlFailed)
	}
	s.stderr.waitFor(t, "store breaker opened", 1)
}
