package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// service is one run of the service inside the test process, on loopback ports.
type service struct {
	grpc, http, admin string
	client            rlsv3.RateLimitServiceClient
	conn              *grpc.ClientConn
	stderr            *syncBuffer
	stop              context.CancelFunc
	done              chan error
}

// syncBuffer collects the service's log; waitFor waits for a text in it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count returns how many times text occurs, and a channel closed at the next write.
func (s *syncBuffer) count(text string) (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return strings.Count(s.b.String(), text), s.changed
}

// waitFor waits until text has occurred n times, for at most 10 seconds.
func (s *syncBuffer) waitFor(t *testing.T, text string, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		got, changed := s.count(text)
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%q logged %d times in 10s, want %d; log:\n%s", text, got, n, s)
		}
	}
}

// start runs the service with args (plus loopback listeners on free ports) and waits until
// it prints where it listens. The service is stopped at the end of the test, and must
// then return nil.
func start(t *testing.T, env map[string]string, args ...string) *service {
	t.Helper()
	args = append([]string{"-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &service{stderr: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() {
		err := run(ctx, args, getenv, pw, s.stderr)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		s.done <- err
	}()
	sc := bufio.NewScanner(pr)
	for s.grpc == "" || s.http == "" || s.admin == "" {
		if !sc.Scan() {
			cancel()
			t.Fatalf("the service stopped before listening: %v\nstderr:\n%s", sc.Err(), s.stderr)
		}
		var name, addr string
		if _, err := fmt.Sscanf(sc.Text(), "ratelimitd: %s listening on %s", &name, &addr); err != nil {
			t.Fatalf("unexpected output line %q", sc.Text())
		}
		switch name {
		case "grpc":
			s.grpc = addr
		case "http":
			s.http = addr
		case "admin":
			s.admin = addr
		}
	}
	go io.Copy(io.Discard, pr)
	conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.conn, s.client = conn, rlsv3.NewRateLimitServiceClient(conn)
	t.Cleanup(func() {
		conn.Close()
		if err := s.shutdown(); err != nil {
			t.Errorf("run returned %v at shutdown, want nil\nstderr:\n%s", err, s.stderr)
		}
	})
	return s
}

func (s *service) shutdown() error {
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		return errors.New("the service did not stop within 30s")
	}
}

func entries(kv ...string) []*rlv3.RateLimitDescriptor_Entry {
	var es []*rlv3.RateLimitDescriptor_Entry
	for i := 0; i+1 < len(kv); i += 2 {
		es = append(es, &rlv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return es
}

func (s *service) should(t *testing.T, domain string, ds ...*rlv3.RateLimitDescriptor) *rlsv3.RateLimitResponse {
	t.Helper()
	resp, err := s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: domain, Descriptors: ds})
	if err != nil {
		t.Fatalf("ShouldRateLimit: %v", err)
	}
	return resp
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

const perUser = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 3, name: per-user}
  - key: plan
    value: free
    rate_limit: {unit: hour, requests_per_unit: 2}
`

func TestRunDefaultServesTheExampleRules(t *testing.T) {
	s := start(t, nil)
	d := &rlv3.RateLimitDescriptor{Entries: entries("remote_address", "10.0.0.1")}
	for i := range 10 {
		if got := s.should(t, "example", d).OverallCode; got != rlsv3.RateLimitResponse_OK {
			// A window boundary between calls restarts the count: allowed too.
			t.Fatalf("call %d: %v, want OK", i+1, got)
		}
	}
	var over bool
	for range 11 { // 11 more calls in at most two one-second windows: one must be over
		if s.should(t, "example", d).OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT {
			over = true
			break
		}
	}
	if !over {
		t.Error("21 calls of 10 per second: none over the limit")
	}
	resp := s.should(t, "example", &rlv3.RateLimitDescriptor{Entries: entries("caller", "internal")})
	if got := resp.Statuses[0].LimitRemaining; got != 1<<32-1 {
		t.Errorf("unlimited: limit_remaining %d, want %d", got, uint32(1<<32-1))
	}
}

func TestGRPCShouldRateLimit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), perUser)
	s := start(t, nil, "-config", dir, "-headers", "draft03")

	user := &rlv3.RateLimitDescriptor{Entries: entries("user", "alice")}
	for i := range 3 {
		resp := s.should(t, "api", user)
		st := resp.Statuses[0]
		if resp.OverallCode != rlsv3.RateLimitResponse_OK || st.LimitRemaining != uint32(2-i) {
			t.Fatalf("call %d: %v remaining %d, want OK remaining %d", i+1, resp.OverallCode, st.LimitRemaining, 2-i)
		}
		if cl := st.CurrentLimit; cl.GetRequestsPerUnit() != 3 || cl.GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE || cl.GetName() != "per-user" {
			t.Fatalf("current_limit %v, want 3 per MINUTE named per-user", cl)
		}
		if d := st.DurationUntilReset.AsDuration(); d <= 0 || d > time.Minute {
			t.Fatalf("duration_until_reset %v, want within (0, 1m]", d)
		}
	}
	resp := s.should(t, "api", user)
	if resp.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT || resp.Statuses[0].Code != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("4th call: %v, want OVER_LIMIT", resp.OverallCode)
	}
	hdr := map[string]string{}
	for _, h := range resp.ResponseHeadersToAdd {
		hdr[h.Key] = h.Value
	}
	if hdr["RateLimit-Limit"] != "3" || hdr["RateLimit-Remaining"] != "0" || hdr["RateLimit-Reset"] == "" {
		t.Errorf("headers %v, want RateLimit-Limit 3, RateLimit-Remaining 0 and a reset", hdr)
	}

	// All or nothing: plan=free allows 2 an hour, bob's per-user limit 3 a minute. Once the
	// plan is exhausted, bob's calls are denied without spending his per-user quota.
	free := &rlv3.RateLimitDescriptor{Entries: entries("plan", "free")}
	bob := &rlv3.RateLimitDescriptor{Entries: entries("user", "bob")}
	for i := range 2 {
		if got := s.should(t, "api", bob, free).OverallCode; got != rlsv3.RateLimitResponse_OK {
			t.Fatalf("bob call %d: %v, want OK", i+1, got)
		}
	}
	for i := range 3 {
		resp := s.should(t, "api", bob, free)
		if resp.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT {
			t.Fatalf("bob denied call %d: %v, want OVER_LIMIT", i+1, resp.OverallCode)
		}
		if got := resp.Statuses[0]; got.Code != rlsv3.RateLimitResponse_OK || got.LimitRemaining != 1 {
			t.Fatalf("bob denied call %d: per-user status %v remaining %d, want OK remaining 1 (untouched)", i+1, got.Code, got.LimitRemaining)
		}
	}

	// hits_addend 0 on a descriptor checks without taking.
	carol := &rlv3.RateLimitDescriptor{Entries: entries("user", "carol"), HitsAddend: wrapperspb.UInt64(0)}
	for range 5 {
		if got := s.should(t, "api", carol).Statuses[0].LimitRemaining; got != 3 {
			t.Fatalf("check only: remaining %d, want 3", got)
		}
	}
	// A request-level hits_addend of 2 takes 2.
	resp, err := s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
		Domain: "api", HitsAddend: 2, Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", "dave")}},
	})
	if err != nil || resp.Statuses[0].LimitRemaining != 1 {
		t.Fatalf("hits_addend 2: %v, %v; want remaining 1", resp, err)
	}

	// Malformed requests are InvalidArgument.
	for name, req := range map[string]*rlsv3.RateLimitRequest{
		"no domain":      {Descriptors: []*rlv3.RateLimitDescriptor{user}},
		"no descriptors": {Domain: "api"},
		"no entries":     {Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{{}}},
	} {
		_, err := s.client.ShouldRateLimit(context.Background(), req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}

	// The standard health service answers.
	h, err := healthpb.NewHealthClient(s.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v, %v; want SERVING", h, err)
	}
}

func TestHTTPEndpoints(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), perUser)
	s := start(t, nil, "-config", dir)
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+s.http+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// envoyproxy/ratelimit's JSON: protobuf JSON in, protobuf JSON out, 429 when over.
	req := `{"domain":"api","descriptors":[{"entries":[{"key":"user","value":"erin"}]}]}`
	for i := range 3 {
		code, body := post("/json", req)
		if code != http.StatusOK || !strings.Contains(body, `"overallCode":"OK"`) {
			t.Fatalf("/json call %d: %d %s, want 200 with overallCode OK", i+1, code, body)
		}
	}
	if code, body := post("/json", req); code != http.StatusTooManyRequests || !strings.Contains(body, `"OVER_LIMIT"`) {
		t.Fatalf("/json 4th call: %d %s, want 429 OVER_LIMIT", code, body)
	}
	if code, body := post("/json", `{"domain":`); code != http.StatusBadRequest {
		t.Errorf("/json with broken JSON: %d %s, want 400", code, body)
	}

	// The plainer API.
	code, body := post("/v1/check", `{"domain":"api","descriptors":[{"entries":[{"key":"user","value":"frank"}],"hits":2}]}`)
	var cr struct {
		Allowed  bool
		Statuses []struct {
			Allowed   bool
			Remaining int
			Rule      *struct{ ID, Limit, Algorithm string }
		}
	}
	if err := json.Unmarshal([]byte(body), &cr); err != nil || code != http.StatusOK {
		t.Fatalf("/v1/check: %d %s (%v)", code, body, err)
	}
	if !cr.Allowed || cr.Statuses[0].Remaining != 1 || cr.Statuses[0].Rule == nil || cr.Statuses[0].Rule.ID != "api.user" || cr.Statuses[0].Rule.Algorithm != "fixed_window" {
		t.Errorf("/v1/check: %s, want allowed, remaining 1, rule api.user fixed_window", body)
	}
	if code, body := post("/v1/check", `{"domain":"api","descriptors":[{"entries":[{"key":"user","value":"frank"}],"hits":2}]}`); code != http.StatusOK || !strings.Contains(body, `"allowed":false`) {
		t.Errorf("/v1/check over the limit: %d %s, want 200 allowed false", code, body)
	}
	if code, _ := post("/v1/check", `{"domain":"api","descriptors":[{"entries":[{"key":"user","value":"x"}]}],"bogus":1}`); code != http.StatusBadRequest {
		t.Errorf("/v1/check with an unknown field: %d, want 400", code)
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "ratelimitd_"} {
		resp, err := http.Get("http://" + s.http + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body without %q", path, resp.StatusCode, want)
		}
	}
}

// configMap lays out dir the way Kubernetes mounts a ConfigMap: dir/rules.yaml is a link
// to ..data/rules.yaml, and ..data a link to a timestamped directory, swapped atomically.
type configMap struct {
	dir string
	n   int
}

func (c *configMap) publish(t *testing.T, rules string) {
	t.Helper()
	c.n++
	ts := fmt.Sprintf("..2026_11_23_%03d", c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dir, ts, "rules.yaml"), rules)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if c.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(c.dir, "rules.yaml")); err != nil {
			t.Fatal(err)
		}
	}
}

func limitOf(n int) string {
	return fmt.Sprintf("domain: api\ndescriptors:\n  - key: user\n    rate_limit: {unit: hour, requests_per_unit: %d}\n", n)
}

// TestReloadUnderLoad swaps the rules several times, once with a broken file, while
// callers keep asking: no call fails, and each answer comes from one whole rule set.
func TestReloadUnderLoad(t *testing.T) {
	cm := &configMap{dir: t.TempDir()}
	cm.publish(t, limitOf(1000))
	s := start(t, nil, "-config", cm.dir, "-reload-interval", "5ms")

	var calls, failures atomic.Int64
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 100_000; i++ {
				d := &rlv3.RateLimitDescriptor{Entries: entries("user", fmt.Sprintf("u%d-%d", g, i))}
				resp, err := s.client.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "api", Descriptors: []*rlv3.RateLimitDescriptor{d}})
				calls.Add(1)
				if err != nil || resp.OverallCode != rlsv3.RateLimitResponse_OK {
					failures.Add(1)
				}
				if err == nil {
					if n := resp.Statuses[0].CurrentLimit.GetRequestsPerUnit(); n != 1000 && n != 2000 && n != 3000 {
						failures.Add(1)
					}
				}
			}
		})
	}
	// probe checks, without taking, which limit the service applies.
	probe := func() uint32 {
		d := &rlv3.RateLimitDescriptor{Entries: entries("user", "probe"), HitsAddend: wrapperspb.UInt64(0)}
		return s.should(t, "api", d).Statuses[0].CurrentLimit.GetRequestsPerUnit()
	}
	cm.publish(t, limitOf(2000))
	s.stderr.waitFor(t, "rules reloaded", 1)
	if got := probe(); got != 2000 {
		t.Fatalf("after the first swap the limit is %d, want 2000", got)
	}
	cm.publish(t, "domain: api\ndescriptors:\n  - key: user\n    rate_limit: {unit: fortnight, requests_per_unit: 5}\n")
	s.stderr.waitFor(t, "rules rejected", 1)
	cm.publish(t, limitOf(3000))
	s.stderr.waitFor(t, "rules reloaded", 2)
	if got := probe(); got != 3000 {
		t.Fatalf("after the last swap the limit is %d, want 3000", got)
	}
	for start := calls.Load(); calls.Load() < start+2000 && failures.Load() == 0; {
		s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "probe"), HitsAddend: wrapperspb.UInt64(0)})
	}
	stopLoad()
	wg.Wait()
	if failures.Load() != 0 || calls.Load() == 0 {
		t.Errorf("%d of %d calls failed or saw a limit from no rule set", failures.Load(), calls.Load())
	}
	if !strings.Contains(s.stderr.String(), "invalid rate limit unit 'fortnight'") {
		t.Errorf("the broken file was not logged with its error; stderr:\n%s", s.stderr)
	}
}

func TestBrokenFileKeepsTheLastGoodRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api.yaml")
	writeFile(t, path, perUser)
	s := start(t, nil, "-config", path, "-reload-interval", "5ms")
	// Written aside, then renamed over the file, so that no poll reads it half-written.
	writeFile(t, path+".tmp", "domain: api\ndescriptors: [{key: user, rate_limit: {unit: sec, requests_per_unit: 1}}]\n")
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	s.stderr.waitFor(t, "rules rejected", 1)
	resp := s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "gina")})
	if got := resp.Statuses[0].CurrentLimit.GetRequestsPerUnit(); got != 3 {
		t.Errorf("after a broken reload the limit is %d, want the last good 3", got)
	}
	mresp, err := http.Get("http://" + s.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`ratelimitd_config_loads_total{result="failure"} 1`, "ratelimitd_config_last_load_failed 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: parsec, requests_per_unit: 1}\n")
	writeFile(t, filepath.Join(dir, "b.yaml"), "domain: b\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n    bogus: 1\n")
	writeFile(t, filepath.Join(dir, "c.yaml"), perUser)
	writeFile(t, filepath.Join(dir, "d.yaml"), "domain: d\ndescriptors:\n  - key: k\n    value: v\n  - key: j\n  - key: k\n    value: v\n")
	var out bytes.Buffer
	err := run(context.Background(), []string{"-check", "-config", dir}, func(string) string { return "" }, &out, io.Discard)
	if err == nil {
		t.Fatal("-check on broken files returned nil")
	}
	want := "invalid rules:\n" +
		filepath.Join(dir, "a.yaml") + ": line 4: descriptor 'a.k': invalid rate limit unit 'parsec'\n" +
		filepath.Join(dir, "b.yaml") + ": line 5: unknown key 'bogus'\n" +
		filepath.Join(dir, "d.yaml") + ": line 6: duplicate descriptor composite key 'd.k_v' (first at line 3)"
	if err.Error() != want {
		t.Errorf("-check error:\n%v\nwant:\n%v", err, want)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-check", "-config", filepath.Join(dir, "c.yaml")}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatalf("-check on a valid file: %v", err)
	}
	if got := out.String(); got != "ok: 1 domains, 2 rules in 1 files\n" {
		t.Errorf("-check output %q", got)
	}
}

func TestSettingsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), perUser)
	s := start(t, map[string]string{"RATELIMITD_CONFIG": dir, "RATELIMITD_HEADERS": "ietf"})
	resp := s.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("user", "hank")})
	var names []string
	for _, h := range resp.ResponseHeadersToAdd {
		names = append(names, h.Key)
	}
	if strings.Join(names, ",") != "RateLimit-Policy,RateLimit" {
		t.Errorf("headers %v, want the IETF pair set from RATELIMITD_HEADERS", names)
	}
	if got := resp.Statuses[0].CurrentLimit.GetName(); got != "per-user" {
		t.Errorf("rule name %q, want per-user from RATELIMITD_CONFIG", got)
	}
}

func TestBadSettings(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown flag":       {[]string{"-nope"}, nil, "flag provided but not defined"},
		"store scheme":       {[]string{"-store", "mongodb://x"}, nil, "unknown scheme"},
		"fail policy":        {[]string{"-fail", "maybe"}, nil, "fail policy"},
		"headers":            {[]string{"-headers", "x"}, nil, "header style"},
		"env duration":       {nil, map[string]string{"RATELIMITD_RELOAD_INTERVAL": "soon"}, "RATELIMITD_RELOAD_INTERVAL"},
		"exposed admin":      {[]string{"-admin", "0.0.0.0:0"}, nil, "admin-token"},
		"missing config":     {[]string{"-config", "/nonexistent/rules.yaml"}, nil, "no such file"},
		"sentinel no master": {[]string{"-store", "redis+sentinel://127.0.0.1:1"}, nil, "master set"},
		"log level":          {[]string{"-log-level", "loud"}, nil, "log level"},
		"zero streams":       {[]string{"-grpc-max-streams", "0"}, nil, "want at least 1"},
		"env connections":    {nil, map[string]string{"RATELIMITD_GRPC_MAX_CONNECTIONS": "many"}, "RATELIMITD_GRPC_MAX_CONNECTIONS"},
		"keepalive timeout":  {[]string{"-grpc-keepalive-timeout", "0s"}, nil, "keepalive timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, tc.args...)
			err := run(context.Background(), args, func(k string) string { return tc.env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// BenchmarkStartToReady measures the time from calling run with the built-in example
// rules to the first 200 from /readyz.
func BenchmarkStartToReady(b *testing.B) {
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := run(ctx, []string{"-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, func(string) string { return "" }, pw, io.Discard)
			pw.Close()
			done <- err
		}()
		sc := bufio.NewScanner(pr)
		var httpAddr string
		for httpAddr == "" && sc.Scan() {
			fmt.Sscanf(sc.Text(), "ratelimitd: http listening on %s", &httpAddr)
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("readyz: %v %v", resp, err)
		}
		resp.Body.Close()
		cancel()
		go io.Copy(io.Discard, pr)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGRPC measures ShouldRateLimit over loopback gRPC, client and server in this
// process, 50 callers on one connection, 10,000 users, on the memory store and on a Redis
// of the benchmark's own.
func BenchmarkGRPC(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) { benchGRPC(b, "memory") })
	b.Run("store=redis", func(b *testing.B) { benchGRPC(b, "redis://"+redistest.Start(b).Addr()) })
}

func benchGRPC(b *testing.B, store string) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte("domain: bench\ndescriptors:\n  - key: user\n    rate_limit: {unit: second, requests_per_unit: 1000000}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	go run(ctx, []string{"-config", dir, "-store", store, "-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-admin", "off", "-log-level", "error"}, func(string) string { return "" }, pw, io.Discard)
	sc := bufio.NewScanner(pr)
	var addr string
	for addr == "" && sc.Scan() {
		fmt.Sscanf(sc.Text(), "ratelimitd: grpc listening on %s", &addr)
	}
	go io.Copy(io.Discard, pr)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := rlsv3.NewRateLimitServiceClient(conn)
	reqs := make([]*rlsv3.RateLimitRequest, 10000)
	for i := range reqs {
		reqs[i] = &rlsv3.RateLimitRequest{Domain: "bench", Descriptors: []*rlv3.RateLimitDescriptor{{Entries: entries("user", fmt.Sprint("u", i))}}}
	}
	var next atomic.Int64
	b.SetParallelism(25) // 50 callers on 2 CPUs
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.ShouldRateLimit(context.Background(), reqs[next.Add(1)%int64(len(reqs))])
			if err != nil || resp.OverallCode != rlsv3.RateLimitResponse_OK {
				b.Fatalf("%v %v", resp, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	// The CPU time of this process (client and server) per call: steadier than calls/s
	// when other processes share the machine.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e3, "cpu-µs/call")
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// -version prints the service's and the library's versions and exits without serving.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"-version"}, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("run -version: %v", err)
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "ratelimitd ") || !strings.Contains(out, "library github.com/go-ratelimit/ratelimit") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("-version printed %q", out)
	}
	if stderr.Len() != 0 {
		t.Errorf("-version wrote to stderr: %q", stderr.String())
	}
}

// TestStartupLogNamesEveryFile: the start-up line names every rule file a directory
// held, not only the first.
func TestStartupLogNamesEveryFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.yaml", "b.yml", "c.yaml"} {
		writeFile(t, filepath.Join(dir, name), "domain: "+strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")+"\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n")
	}
	s := start(t, nil, "-config", dir)
	s.stderr.waitFor(t, `"msg":"serving"`, 1)
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if !strings.Contains(line, `"msg":"serving"`) {
			continue
		}
		var entry struct{ Files []string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatal(err)
		}
		if len(entry.Files) != 3 || !strings.HasSuffix(entry.Files[0], "a.yaml") || !strings.HasSuffix(entry.Files[1], "b.yml") || !strings.HasSuffix(entry.Files[2], "c.yaml") {
			t.Errorf("start-up line names the files %q, want a.yaml, b.yml and c.yaml", entry.Files)
		}
		return
	}
	t.Fatalf("no start-up line in %s", s.stderr)
}
