package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rls "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit/internal/benchload"
	"google.golang.org/grpc"
)

func TestRunLevelCountsEveryOutcome(t *testing.T) {
	var total, workerOutOfRange atomic.Int64
	call := func(_ context.Context, worker, user int) (outcome, error) {
		total.Add(1)
		if worker < 0 || worker >= 8 {
			workerOutOfRange.Add(1)
		}
		time.Sleep(100 * time.Microsecond)
		switch user % 4 {
		case 0:
			return outOK, nil
		case 1:
			return outOver, nil
		case 2:
			return outUnknown, nil
		default:
			return outError, errors.New("boom")
		}
	}
	p := plan{Concurrency: 8, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		CallTimeout: time.Second, Users: 1000, Seed: 1}
	start := time.Now()
	res := runLevel(context.Background(), p, call)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("level took %v", el)
	}
	if workerOutOfRange.Load() != 0 {
		t.Fatal("a worker index outside [0, concurrency)")
	}
	if res.Calls == 0 {
		t.Fatal("no calls counted")
	}
	if got := res.OK + res.Over + res.Unknown + res.Errors; got != res.Calls {
		t.Fatalf("outcomes add up to %d, calls %d", got, res.Calls)
	}
	if got, want := res.Latency.count(), res.OK+res.Over+res.Unknown; got != want {
		t.Fatalf("latency samples %d, want one per answered call (%d)", got, want)
	}
	if uint64(total.Load()) <= res.Calls {
		t.Fatalf("warm-up calls were counted: %d made, %d counted", total.Load(), res.Calls)
	}
	// Users are drawn uniformly: each outcome gets about a quarter.
	for name, n := range map[string]uint64{"OK": res.OK, "OVER": res.Over, "UNKNOWN": res.Unknown, "error": res.Errors} {
		if share := float64(n) / float64(res.Calls); share < 0.1 || share > 0.4 {
			t.Errorf("%s share %.2f, want about 0.25", name, share)
		}
	}
	if res.FirstError != "boom" {
		t.Errorf("first error %q, want boom", res.FirstError)
	}
	if res.Latency.quantile(0.5) < 100*time.Microsecond {
		t.Errorf("p50 %v below the caller's 100us sleep", res.Latency.quantile(0.5))
	}
	if r := res.rate(); r != float64(res.Calls)/0.2 {
		t.Errorf("rate %v, want calls/0.2s", r)
	}
}

func TestRunLevelStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	call := func(ctx context.Context, _, _ int) (outcome, error) {
		<-ctx.Done()
		return outError, ctx.Err()
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	res := runLevel(ctx, plan{Concurrency: 4, Duration: time.Minute, CallTimeout: time.Minute, Users: 10}, call)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("cancel took %v to stop the level", el)
	}
	if res.FirstError == "" {
		t.Error("no error reported for an interrupted level")
	}
}

// fakeRLS answers OVER_LIMIT for users whose id ends in an odd digit and OK
// for the others, and counts what it saw.
type fakeRLS struct {
	rls.UnimplementedRateLimitServiceServer
	mu    sync.Mutex
	calls int
	bad   int
}

func (f *fakeRLS) ShouldRateLimit(_ context.Context, req *rls.RateLimitRequest) (*rls.RateLimitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	ds := req.GetDescriptors()
	if req.GetDomain() != "bench" || len(ds) != 1 || len(ds[0].GetEntries()) != 1 || ds[0].GetEntries()[0].GetKey() != "user" {
		f.bad++
		return &rls.RateLimitResponse{OverallCode: rls.RateLimitResponse_UNKNOWN}, nil
	}
	v := ds[0].GetEntries()[0].GetValue()
	if !strings.HasPrefix(v, "user-") {
		f.bad++
	}
	if (v[len(v)-1]-'0')%2 == 1 {
		return &rls.RateLimitResponse{OverallCode: rls.RateLimitResponse_OVER_LIMIT}, nil
	}
	return &rls.RateLimitResponse{OverallCode: rls.RateLimitResponse_OK}, nil
}

func TestGRPCCallerAgainstLoopbackServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := new(fakeRLS)
	rls.RegisterRateLimitServiceServer(srv, fake)
	go srv.Serve(lis)
	defer srv.Stop()

	addr := lis.Addr().String()
	if err := checkLoopback(addr); err != nil {
		t.Fatal(err)
	}
	call, answered, closeConns, err := newGRPCCaller(addr, 2, 100, "bench", "user")
	if err != nil {
		t.Fatal(err)
	}
	defer closeConns()
	cfg := config{name: "fake", addr: addr, readyWait: 5 * time.Second}
	if err := waitReady(context.Background(), cfg, call); err != nil {
		t.Fatal(err)
	}
	p := plan{Concurrency: 10, Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond,
		CallTimeout: 2 * time.Second, Users: 100, Seed: 9}
	res := runLevel(context.Background(), p, call)

	fake.mu.Lock()
	served, bad := fake.calls, fake.bad
	fake.mu.Unlock()
	if bad != 0 {
		t.Errorf("server saw %d malformed requests", bad)
	}
	if res.Errors != 0 || res.Unknown != 0 {
		t.Errorf("errors %d, unknown %d (first error %q)", res.Errors, res.Unknown, res.FirstError)
	}
	if res.OK == 0 || res.Over == 0 {
		t.Fatalf("want both OK and OVER_LIMIT, got %d and %d", res.OK, res.Over)
	}
	if answered.Load() != uint64(served) {
		t.Errorf("client counted %d answers, server answered %d", answered.Load(), served)
	}
	if res.Calls >= uint64(served) {
		t.Errorf("counted %d calls, server served %d including the warm-up", res.Calls, served)
	}

	// The row and the table carry the same numbers.
	r := newRow("fake", res)
	r.CPUServer, r.CPUClient, r.CPUMachine = "12%", "3%", "40%"
	back, err := parseRow(r.tsv())
	if err != nil {
		t.Fatal(err)
	}
	if back != r {
		t.Fatalf("row round trip:\n got %+v\nwant %+v", back, r)
	}
	var buf bytes.Buffer
	printTable(&buf, []row{r})
	if !strings.Contains(buf.String(), "fake") || !strings.Contains(buf.String(), "OVER_LIMIT") {
		t.Errorf("table lacks the row:\n%s", buf.String())
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:1", "127.3.2.1:80", "[::1]:8081", "localhost:9"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:80", "192.168.1.1:1", "example.com:80", "8081", "[::]:1"} {
		if checkLoopback(bad) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseLevels(t *testing.T) {
	got, err := parseLevels(" 1, 10,50 ,200,")
	if err != nil || len(got) != 4 || got[0] != 1 || got[3] != 200 {
		t.Fatalf("parseLevels = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "x", "1,-2", "100000"} {
		if _, err := parseLevels(bad); err == nil {
			t.Errorf("parseLevels(%q) accepted", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	busy, ok := parseProcStat("cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n")
	if !ok || busy != 161*benchload.ClockTick {
		t.Fatalf("parseProcStat = %v, %v; want %v", busy, ok, 161*benchload.ClockTick)
	}
	if d, ok := cpuTime("self"); ok && d < 0 {
		t.Errorf("own CPU time %v", d)
	}
}

func TestCPUPerCall(t *testing.T) {
	for _, c := range []struct {
		share string
		rate  float64
		want  string
	}{
		{"87%", 21750, "40.0us"},
		{"100%", 10000, "100.0us"},
		{"-", 100, "-"},
		{"50%", 0, "-"},
		{"x%", 1, "-"},
	} {
		if got := cpuPerCall(c.share, c.rate); got != c.want {
			t.Errorf("cpuPerCall(%q, %v) = %q, want %q", c.share, c.rate, got, c.want)
		}
	}
}

func TestCPUOthers(t *testing.T) {
	r := row{CPUServer: "80%", CPURedis: "-", CPUClient: "50%", CPUMachine: "190%"}
	if got := cpuOthers(r); got != "60%" {
		t.Errorf("cpuOthers = %q, want 60%%", got)
	}
	r.CPUMachine = "-"
	if got := cpuOthers(r); got != "-" {
		t.Errorf("cpuOthers without the machine = %q, want -", got)
	}
	r.CPUMachine = "120%" // sampling skew can make the parts exceed the whole
	if got := cpuOthers(r); got != "0%" {
		t.Errorf("cpuOthers = %q, want 0%%", got)
	}
}
