package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

const redisRules = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 100}
  - key: plan
    value: free
    rate_limit: {unit: hour, requests_per_unit: 2}
  - key: gcra
    rate_limit: {requests_per_unit: 10, period: 1h, algorithm: gcra, burst: 5}
`

// TestRedisStores runs the service on a standalone Redis, a Cluster and a Sentinel group:
// two services on one store share the limit exactly, and a request of several
// descriptors is all-or-nothing.
func TestRedisStores(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"standalone", func(t *testing.T) string { return "redis://" + redistest.Start(t).Addr() }},
		{"cluster", func(t *testing.T) string {
			return "redis+cluster://" + strings.Join(redistest.StartCluster(t).Addrs(), ",")
		}},
		{"sentinel", func(t *testing.T) string {
			g := redistest.StartSentinel(t)
			return "redis+sentinel://" + strings.Join(g.SentinelAddrs(), ",") + "/" + g.MasterName
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			// A timeout long enough for a loaded machine: these calls must all be decided.
			a := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "10s")
			b := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "10s")

			// 8 callers on two services take one key's 100 units: exactly 100 pass.
			var passed atomic.Int64
			var wg sync.WaitGroup
			for g := range 8 {
				s := []*service{a, b}[g%2]
				wg.Go(func() {
					for range 20 {
						resp, err := s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
							Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", "shared")}},
						})
						if err != nil {
							t.Error(err)
							return
						}
						if resp.OverallCode == rlsv3.RateLimitResponse_OK {
							passed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := passed.Load(); got != 100 {
				t.Errorf("160 calls on a limit of 100 across two services: %d passed, want 100", got)
			}

			// All or nothing, on a Cluster too (there the keys may sit on different slots).
			user := &rlv3.RateLimitDescriptor{Entries: entries("user", "ivy")}
			free := &rlv3.RateLimitDescriptor{Entries: entries("plan", "free")}
			for i := range 4 {
				resp := a.should(t, "api", user, free)
				wantOK := i < 2
				if (resp.OverallCode == rlsv3.RateLimitResponse_OK) != wantOK {
					t.Fatalf("call %d: %v, want OK %v", i+1, resp.OverallCode, wantOK)
				}
				if got, want := resp.Statuses[0].LimitRemaining, uint32(100-min(i+1, 2)); got != want {
					t.Fatalf("call %d: per-user remaining %d, want %d (denied calls take nothing)", i+1, got, want)
				}
			}

			// GCRA on Redis: a burst of 5, then over.
			for i := range 6 {
				resp := b.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("gcra", "k")})
				if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 5; got != want {
					t.Fatalf("gcra call %d: %v, want OK %v", i+1, resp.OverallCode, want)
				}
			}
		})
	}
}

// TestRedisVanishes stops Redis under a running service: with -fail error the calls fail
// with Unavailable (Envoy then applies its failure_mode_deny) and the service is not
// ready; with the default local policy they keep being answered, and the service stays
// ready while /readyz reports the store down.
func TestRedisVanishes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	url := "redis://" + r.Addr()
	// A refused connection fails at once; the long timeout keeps a loaded machine from
	// failing the calls made while Redis is up.
	strict := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "10s")
	local := start(t, nil, "-config", dir, "-store", url)
	req := &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", "jo")}}}
	for _, s := range []*service{strict, local} {
		if _, err := s.client.ShouldRateLimit(context.Background(), req); err != nil {
			t.Fatalf("with Redis up: %v", err)
		}
	}
	r.Kill()
	for i := range 3 {
		_, err := strict.client.ShouldRateLimit(context.Background(), req)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("fail=error, call %d with Redis down: %v, want Unavailable", i+1, err)
		}
		resp, err := local.client.ShouldRateLimit(context.Background(), req)
		if err != nil || resp.OverallCode != rlsv3.RateLimitResponse_OK {
			t.Errorf("fail=local, call %d with Redis down: %v, %v; want OK from the local limit", i+1, resp.GetOverallCode(), err)
		}
	}
	code, body := get(t, "http://"+strict.http+"/readyz")
	if code != 503 || !strings.Contains(body, "store") {
		t.Errorf("fail=error: /readyz with Redis down: %d %s, want 503 naming the store", code, body)
	}
	// The local policy answers every call: the service stays in rotation, and says
	// that its store is down.
	code, body = get(t, "http://"+local.http+"/readyz")
	if code != 200 || !strings.Contains(body, "store: down") {
		t.Errorf("fail=local: /readyz with Redis down: %d %s, want 200 with store: down", code, body)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestShutdownDrains stops the service while a call waits on a slow Redis: the call is
// answered, not cut off, and run returns nil.
func TestShutdownDrains(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	proxy := redistest.StartProxy(t, r.Addr())
	s := start(t, nil, "-config", dir, "-store", "redis://"+proxy.Addr(), "-fail", "error", "-store-timeout", "5s")
	call := func(user string) (*rlsv3.RateLimitResponse, error) {
		return s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
			Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", user)}},
		})
	}
	if _, err := call("warm"); err != nil { // opens the connections the delay applies to
		t.Fatal(err)
	}
	direct := r.Client(t)
	keys := func() int64 {
		n, err := direct.DBSize(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := keys()
	proxy.DelayOpenConns(300 * time.Millisecond)
	type answer struct {
		resp *rlsv3.RateLimitResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := call("in-flight")
		answered <- answer{resp, err}
	}()
	// The script has run when its key exists; its reply is still held by the proxy.
	deadline := time.Now().Add(10 * time.Second)
	for keys() == before {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached Redis")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.shutdown() }()
	a := <-answered
	if a.err != nil || a.resp.OverallCode != rlsv3.RateLimitResponse_OK {
		t.Errorf("the call in flight at shutdown: %v, %v; want OK", a.resp.GetOverallCode(), a.err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run returned %v, want nil", err)
	}
}

// TestRedisPrefix: two services on one Redis with their own -redis-prefix (or
// RATELIMITD_REDIS_PREFIX) keep their own counters, under keys starting with their prefix;
// a braced prefix is refused at start-up.
func TestRedisPrefix(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	r := redistest.Start(t)
	url := "redis://" + r.Addr()
	staging := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "10s", "-redis-prefix", "staging:")
	prod := start(t, map[string]string{"RATELIMITD_REDIS_PREFIX": "prod:"}, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "10s")
	free := &rlv3.RateLimitDescriptor{Entries: entries("plan", "free")} // 2 an hour
	for i := range 2 {
		for _, s := range []*service{staging, prod} {
			if resp := s.should(t, "api", free); resp.OverallCode != rlsv3.RateLimitResponse_OK {
				t.Fatalf("call %d: %v, want OK: the environments share counters", i+1, resp.OverallCode)
			}
		}
	}
	if resp := prod.should(t, "api", free); resp.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("third call: %v, want OVER_LIMIT", resp.OverallCode)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var staged, produced int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "staging:"):
			staged++
		case strings.HasPrefix(k, "prod:"):
			produced++
		default:
			t.Errorf("key %q starts with neither prefix", k)
		}
	}
	if staged != 1 || produced != 1 {
		t.Errorf("keys %q: want one under each prefix", keys)
	}
	err = run(context.Background(), []string{"-store", url, "-redis-prefix", "a{b}:"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "redis prefix") {
		t.Errorf("run with a braced prefix: %v, want an error naming the redis prefix", err)
	}
}
