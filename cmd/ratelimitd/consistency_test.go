package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

const eventualRuleFile = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 100}
  - key: fast
    rate_limit: {unit: hour, requests_per_unit: 50, algorithm: sliding_window_counter, consistency: eventual, sync: 20ms}
  - key: exact
    rate_limit: {unit: hour, requests_per_unit: 3, consistency: strict}
  - key: gcra
    rate_limit: {requests_per_unit: 10, period: 1h, algorithm: gcra, burst: 5}
`

// TestEventual runs two services on one redis-server with ?consistency=eventual: through
// gRPC and HTTP, the eventual rules never admit more than their limit across the two,
// each service's first call of a key waits for its lease instead of being refused, Redis
// sees a script per lease rather than per call, and at shutdown the services give back
// what they did not spend, so Redis ends holding exactly what was admitted. A rule of
// consistency strict, and a GCRA rule (which leases cannot decide), stay exact.
func TestEventual(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), eventualRuleFile)
	srv := redistest.Start(t)
	url := "redis://" + srv.Addr() + "?consistency=eventual&sync=50ms&accuracy=0.1"
	args := []string{"-config", dir, "-store", url, "-fail", "closed", "-store-timeout", "10s", "-log-level", "debug"}
	a, b := start(t, nil, args...), start(t, nil, args...)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	scripts0 := evalCalls(t, rc)

	// The first call of each service waits for its lease: allowed.
	for _, s := range []*service{a, b} {
		if resp := s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "first")}); resp.OverallCode != rlsv3.RateLimitResponse_OK {
			t.Fatalf("a service's first call of a key: %v, want OK (it waits for its lease)", resp.OverallCode)
		}
	}

	// 8 callers on two services, half through gRPC and half through HTTP, 30 calls each
	// on one key: never more than the limit.
	passed := map[string]*atomic.Int64{"user": {}, "fast": {}}
	var wg sync.WaitGroup
	for g := range 8 {
		s := []*service{a, b}[g%2]
		for key := range passed {
			wg.Go(func() {
				for range 30 {
					ok := false
					if g < 4 {
						resp, err := s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
							Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries(key, "shared")}},
						})
						if err != nil {
							t.Error(err)
							return
						}
						ok = resp.OverallCode == rlsv3.RateLimitResponse_OK
					} else {
						ok = postJSON(t, s, `{"domain":"api","descriptors":[{"entries":[{"key":"`+key+`","value":"shared"}]}]}`)
					}
					if ok {
						passed[key].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("admitted: user %d of 100, fast %d of 50", passed["user"].Load(), passed["fast"].Load())
	for key, limit := range map[string]int64{"user": 100, "fast": 50} {
		if got := passed[key].Load(); got > limit || got == 0 {
			t.Errorf("%s: 240 calls across two services admitted %d, want between 1 and the limit %d", key, got, limit)
		}
	}

	// Strict rules stay exact on the same services.
	for i := range 4 {
		resp := []*service{a, b}[i%2].should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("exact", "k")})
		if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 3; got != want {
			t.Fatalf("consistency strict, call %d: %v, want OK %v", i+1, resp.OverallCode, want)
		}
	}
	for i := range 6 {
		resp := []*service{a, b}[i%2].should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("gcra", "k")})
		if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 5; got != want {
			t.Fatalf("gcra under the eventual default, call %d: %v, want OK %v", i+1, resp.OverallCode, want)
		}
	}
	scripts := evalCalls(t, rc) - scripts0
	t.Logf("%d scripts for %d calls", scripts, 2+240*2+4+6)
	if scripts*3 > 2+240*2+4+6 {
		t.Errorf("%d scripts for about 500 calls: the eventual rules are not leased", scripts)
	}
	if !strings.Contains(a.stderr.String(), `"msg":"rules decided from leases (consistency: eventual)","rules":2`) {
		t.Errorf("the start-up log does not count the 2 eventual rules:\n%s", a.stderr)
	}

	for _, s := range []*service{a, b} {
		if err := s.shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	for key, alg := range map[string]string{"user": "fw", "fast": "swc"} {
		n := windowCount(t, rc, key, alg)
		if want := passed[key].Load(); n != want {
			t.Errorf("%s: Redis counts %d after both services stopped, want the %d admitted (the unspent units given back)", key, n, want)
		}
	}
}

// TestEventualSettings: a bad consistency setting in the store URL stops the start-up
// with its parameter named; one in a rule file is reported with its file and line by
// -check; on the memory store, eventual rules are decided as the others, with a warning.
func TestEventualSettings(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"consistency=eventualy", `consistency="eventualy": want strict or eventual`},
		{"consistency=eventual&sync=0s", `sync="0s": want a duration from 1ms to 1m0s`},
		{"sync=fast", `sync="fast"`},
		{"accuracy=0", `accuracy="0": want a fraction in (0, 1], such as 0.01`},
		{"accuracy=1.5", `accuracy="1.5"`},
		{"accuracy=5%", `query: invalid URL escape "%"`},
	} {
		args := []string{"-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", "redis://127.0.0.1:1?" + tc.query}
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-store ...?%s: %v, want an error containing %q", tc.query, err, tc.want)
		}
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "domain: a\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n      algorithm: gcra\n      consistency: eventual\n")
	err := run(context.Background(), []string{"-check", "-config", dir}, func(string) string { return "" }, io.Discard, io.Discard)
	if want := "a.yaml: line 8: descriptor 'a.k': consistency: eventual decides fixed_window and sliding_window_counter, not gcra"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("-check: %v, want %q", err, want)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), "domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: minute, requests_per_unit: 2, consistency: eventual}\n")
	s := start(t, nil, "-config", dir)
	for i := range 3 {
		resp := s.should(t, "a", &rlv3.RateLimitDescriptor{Entries: entries("k", "v")})
		if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 2; got != want {
			t.Fatalf("memory store, eventual rule, call %d: %v, want OK %v", i+1, resp.OverallCode, want)
		}
	}
	if !strings.Contains(s.stderr.String(), "consistency: eventual needs a Redis store") {
		t.Errorf("no warning that the memory store decides the eventual rule itself:\n%s", s.stderr)
	}
}

// postJSON sends body to s's /json and reports whether it was allowed.
func postJSON(t *testing.T, s *service, body string) bool {
	resp, err := http.Post("http://"+s.http+"/json", "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("/json: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode == http.StatusOK
}

// evalCalls returns the scripts Redis has run.
func evalCalls(t *testing.T, c *redis.Client) int64 {
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
			calls, _, _ := strings.Cut(strings.TrimPrefix(line[strings.Index(line, ":")+1:], "calls="), ",")
			v, _ := strconv.ParseInt(calls, 10, 64)
			n += v
		}
	}
	return n
}

// windowCount reads the count of the current window the service's key of entry
// key=shared holds in Redis under the default prefix.
func windowCount(t *testing.T, c *redis.Client, key, alg string) int64 {
	keys, err := c.Keys(context.Background(), "ratelimit:*"+key+"=6:shared}:"+alg).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys of %s: %v, %v; want one", key, keys, err)
	}
	v, err := c.Get(context.Background(), keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(v, ":")
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatalf("state %q: %v", v, err)
	}
	return n
}
