package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// TestStartsWithoutRedis starts the service under each -fail policy while its Redis is
// down, then brings Redis up: under local, open and closed the service starts, is ready
// and answers by policy, and /readyz reports the store apart; under error it starts but
// is not ready until Redis answers. Once Redis is up every service decides on it.
func TestStartsWithoutRedis(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	url := "redis://" + r.Addr()
	r.Kill()
	req := &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("plan", "free")}}}
	type want struct {
		ready bool
		code  rlsv3.RateLimitResponse_Code // of the 3rd call on plan=free, 2 an hour
		err   codes.Code
	}
	services := map[string]*service{}
	for pol, w := range map[string]want{
		"local":  {true, rlsv3.RateLimitResponse_OVER_LIMIT, codes.OK},
		"open":   {true, rlsv3.RateLimitResponse_OK, codes.OK},
		"closed": {true, rlsv3.RateLimitResponse_OVER_LIMIT, codes.OK},
		"error":  {false, 0, codes.Unavailable},
	} {
		s := start(t, nil, "-config", dir, "-store", url, "-fail", pol)
		services[pol] = s
		code, body := get(t, "http://"+s.http+"/readyz")
		if (code == 200) != w.ready || !strings.Contains(body, "store") {
			t.Errorf("-fail %s, Redis down: /readyz %d %q, want ready %v and the store's state", pol, code, body, w.ready)
		}
		var resp *rlsv3.RateLimitResponse
		var err error
		for range 3 {
			resp, err = s.client.ShouldRateLimit(context.Background(), req)
		}
		if status.Code(err) != w.err || err == nil && resp.OverallCode != w.code {
			t.Errorf("-fail %s, Redis down: 3rd call %v, %v; want %v, %v", pol, resp.GetOverallCode(), err, w.code, w.err)
		}
	}

	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	direct := r.Client(t)
	for pol, s := range services {
		// Redis is used once the service has connected and its breaker has let a call
		// through: wait for a key of this service's to appear.
		user := &rlv3.RateLimitDescriptor{Entries: entries("user", "up-"+pol)}
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{user}})
			keys, err := direct.Keys(context.Background(), "*up-"+pol+"*").Result()
			if err == nil && len(keys) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("-fail %s: no call reached Redis within 10s of its return", pol)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// /readyz caches its answer for a second.
		for {
			code, body := get(t, "http://"+s.http+"/readyz")
			if code == 200 && strings.Contains(body, "store: up") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("-fail %s, Redis up: /readyz %d %q, want 200 with store: up", pol, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestStartsWhileRedisStalls: a Redis that accepts connections and never answers (a
// stopped process) does not hold the start-up; calls are answered by the local policy.
func TestStartsWhileRedisStalls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	r.Pause()
	t.Cleanup(r.Resume) // before the server's own cleanup stops it
	began := time.Now()
	s := start(t, nil, "-config", dir, "-store", "redis://"+r.Addr())
	t.Logf("listening %v after the start with Redis stopped", time.Since(began).Round(time.Millisecond))
	resp := s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "stall")})
	if resp.OverallCode != rlsv3.RateLimitResponse_OK {
		t.Errorf("with Redis stalled: %v, want OK from the local limit", resp.OverallCode)
	}
	if code, body := get(t, "http://"+s.http+"/readyz"); code != 200 || !strings.Contains(body, "store") {
		t.Errorf("with Redis stalled: /readyz %d %q, want 200 and the store's state", code, body)
	}
}
