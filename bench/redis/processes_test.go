package redis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/benchload"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/go-ratelimit/ratelimit/redisstore"
	"github.com/redis/go-redis/v9"
)

const processEnv = "BENCH_LEASE_PROCESS"

// TestLeaseProcesses measures the lease strategy as it is deployed: 4 OS processes, each
// with its own client and 16 goroutines deciding as fast as they can for 3 seconds, share
// the limits through one redis-server, on one hot key and across 100,000 keys
// (FixedWindow, ε = 5%), under a limit the load stays below (10^9 per minute: every
// decision is allowed, the leases refill) and under one it exceeds (100,000 per minute per
// key). It reports each process's decisions per second and per CPU second, and the
// scripts per decision. On 2 cores the 4 processes share the cores with redis-server and
// each other: the decisions per CPU second say what one process does with a core.
func TestLeaseProcesses(t *testing.T) {
	measureOnly(t)
	srv := redistest.Start(t)
	const procs = 4
	t.Logf("%-12s %-7s | %-40s | %12s %12s %10s", "limit/min", "keys", "decisions/s of each process", "all /s", "per CPU-s", "scripts/dec")
	for _, rate := range []int{1_000_000_000, 100_000} {
		for _, keys := range []int{1, 100_000} {
			spec := fmt.Sprintf("%s;%s;%d;%d", srv.Addr(), freshPrefix(), keys, rate)
			children := make([]*storetest.Child, procs)
			for i := range children {
				children[i] = storetest.StartChild(t, "TestLeaseProcess", processEnv, spec)
			}
			for i, c := range children {
				if !c.WaitOutput(func(out string) bool { return strings.Contains(out, "ready\n") }, 30*time.Second) {
					t.Fatalf("process %d not ready: %s", i, c.Output())
				}
			}
			for _, c := range children {
				fmt.Fprintln(c.Stdin(), "go")
			}
			var rates []string
			var all, cpu, decisions, scripts float64
			for i, c := range children {
				if err := c.Wait(); err != nil {
					t.Fatalf("process %d: %v\n%s", i, err, c.Output())
				}
				r, err := parseResult(c.Output())
				if err != nil {
					t.Fatalf("process %d: %v\n%s", i, err, c.Output())
				}
				perSecond := r["decisions"] / r["seconds"]
				rates = append(rates, fmt.Sprintf("%.2fM", perSecond/1e6))
				all += perSecond
				cpu += r["cpu"]
				decisions += r["decisions"]
				scripts += r["scripts"]
			}
			t.Logf("%-12d %-7d | %-40s | %11.2fM %11.2fM %10.6f", rate, keys, strings.Join(rates, " "), all/1e6, decisions/cpu/1e6, scripts/decisions)
		}
	}
}

// parseResult reads the child's "result name=value ..." line.
func parseResult(out string) (map[string]float64, error) {
	for line := range strings.SplitSeq(out, "\n") {
		fields, ok := strings.CutPrefix(line, "result ")
		if !ok {
			continue
		}
		r := map[string]float64{}
		for f := range strings.FieldsSeq(fields) {
			name, value, _ := strings.Cut(f, "=")
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("result %q: %w", f, err)
			}
			r[name] = v
		}
		return r, nil
	}
	return nil, fmt.Errorf("no result line")
}

// TestLeaseProcess is one process of TestLeaseProcesses; it does nothing unless run by it.
func TestLeaseProcess(t *testing.T) {
	addr, rest, _ := strings.Cut(storetest.ChildSpec(t, processEnv), ";")
	prefix, rest, _ := strings.Cut(rest, ";")
	k, r, _ := strings.Cut(rest, ";")
	keys, _ := strconv.Atoi(k)
	rate, _ := strconv.Atoi(r)
	const goroutines, dur = 16, 3 * time.Second
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 8})
	defer c.Close()
	s := redisstore.NewLease(c, &redisstore.LeaseOptions{
		Options:  redisstore.Options{Prefix: prefix, Policy: ratelimit.FailClosed, Timeout: 5 * time.Second},
		Accuracy: 0.05,
	})
	names := make([]string, keys)
	for i := range names {
		names[i] = "bench:" + strconv.Itoa(i)
	}
	limit := ratelimit.Limit{Rate: rate, Period: time.Minute}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cpu0, ok := benchload.CPUTime()
	if !ok {
		t.Skip("the process's CPU time is not read on this system")
	}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			ctx := context.Background()
			i := g * keys / goroutines // each goroutine its own run of keys: no shared counter
			for time.Now().Before(deadline) {
				for range 256 { // the clock once per 256 decisions
					if _, err := s.Take(ctx, names[i%keys], ratelimit.FixedWindow, limit, 1); err != nil {
						t.Error(err)
						return
					}
					i++
				}
			}
		})
	}
	wg.Wait()
	cpu1, _ := benchload.CPUTime()
	seconds, cpu := time.Since(start).Seconds(), (cpu1 - cpu0).Seconds()
	st := s.Stats()
	if err := s.Close(context.Background()); err != nil {
		t.Error(err)
	}
	fmt.Printf("result decisions=%d allowed=%d scripts=%d seconds=%f cpu=%f\n", st.Decisions, st.Allowed, st.Scripts, seconds, cpu)
}
