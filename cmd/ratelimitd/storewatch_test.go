package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// TestRedisOutageLogsAndMetrics kills Redis under load: the log gets the breaker's
// transitions and a summary, not a line per call, and no descriptor value; the metrics
// show the breaker open, the failures by kind and the policy answers; once Redis is back
// the breaker closes and says so.
func TestRedisOutageLogsAndMetrics(t *testing.T) {
	const calls = 2000
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	s := start(t, nil, "-config", dir, "-store", "redis://"+r.Addr())
	req := func(i int) *rlsv3.RateLimitRequest {
		return &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", fmt.Sprintf("secret-value-%d", i%50))}}}
	}
	if _, err := s.client.ShouldRateLimit(context.Background(), req(0)); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	for i := range calls {
		resp, err := s.client.ShouldRateLimit(context.Background(), req(i))
		if err != nil || resp.OverallCode != rlsv3.RateLimitResponse_OK {
			t.Fatalf("call %d with Redis down: %v, %v; want OK from the local limit", i, resp.GetOverallCode(), err)
		}
	}
	s.stderr.waitFor(t, "store breaker opened", 1)
	_, m := get(t, "http://"+s.http+"/metrics")
	for _, want := range []string{
		"ratelimitd_store_breaker_open 1",
		`ratelimitd_store_failures_total{kind="refused"}`,
		`ratelimitd_store_policy_answers_total{reason="breaker_open"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics during the outage lacks %q", want)
		}
	}
	if strings.Contains(m, `ratelimitd_store_policy_answers_total{reason="breaker_open"} 0`) {
		t.Error("no answer by policy counted while the breaker was open")
	}

	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	for n, _ := s.stderr.count("store breaker closed"); n == 0; n, _ = s.stderr.count("store breaker closed") {
		s.client.ShouldRateLimit(context.Background(), req(0))
	}
	log := s.stderr.String()
	if strings.Contains(log, "secret-value") {
		t.Errorf("a descriptor value reached the log:\n%s", log)
	}
	t.Logf("%d calls during an outage: %d log lines:\n%s", calls, strings.Count(log, "\n"), log)
	if n := strings.Count(log, "\n"); n > 20 {
		t.Errorf("%d calls during an outage wrote %d log lines, want a few:\n%s", calls, n, log)
	}
}

func TestWithoutKey(t *testing.T) {
	inner := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("redisstore: take %q: %w", "3:api|4:user=5:alice", inner), "redisstore: take: dial tcp: connect: connection refused"},
		{fmt.Errorf("redisstore: reset %q: %w", `a"b`, context.DeadlineExceeded), "redisstore: reset: context deadline exceeded"},
		{fmt.Errorf("redisstore: connect: %w", inner), "redisstore: connect: dial tcp: connect: connection refused"},
		{errors.New("plain"), "plain"},
	} {
		if got := withoutKey(tc.err); got != tc.want {
			t.Errorf("withoutKey(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestFailureKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("redisstore: take %q: %w", "k", context.DeadlineExceeded), "timeout"},
		{fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), "refused"},
		{fmt.Errorf("redisstore: take %q: not connected yet: %w", "k", &net.OpError{Op: "dial", Err: errors.New("refused")}), "not_connected"},
		{errors.New("something else"), "other"},
	} {
		if got := failureKinds[failureKind(tc.err)]; got != tc.want {
			t.Errorf("failureKind(%q) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
