package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// childEnv carries the parameters of TestMultiProcessChild from the parent process:
// "cluster|standalone;addr,addr;prefix;start unix ns".
const childEnv = "REDISSTORE_TEST_CHILD"

const (
	procs      = 4
	goroutines = 32
	attempts   = 40 // per goroutine and algorithm
)

// exactLimit refills one unit per 8.76 hours: during the test, nothing refills.
var exactLimit = ratelimit.Limit{Rate: 1000, Period: 365 * 24 * time.Hour}

// testMultiProcess runs procs copies of this test binary, each with goroutines goroutines
// hammering one key per algorithm, and requires that exactly the limit was admitted.
func testMultiProcess(t *testing.T, mode string, addrs []string) {
	prefix := testPrefix(t)
	start := time.Now().Add(500 * time.Millisecond).UnixNano()
	env := fmt.Sprintf("%s=%s;%s;%s;%d", childEnv, mode, strings.Join(addrs, ","), prefix, start)
	outs := make([]bytes.Buffer, procs)
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), env)
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	totals := map[string]int{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i].String())
		}
		for _, line := range strings.Split(outs[i].String(), "\n") {
			if alg, n, ok := strings.Cut(strings.TrimSpace(line), " allowed="); ok {
				k, err := strconv.Atoi(n)
				if err != nil {
					t.Fatalf("child %d: %q", i, line)
				}
				totals[alg] += k
			}
		}
	}
	t.Logf("admitted per algorithm: %v", totals)
	for _, alg := range algorithms {
		if got := totals[alg.String()]; got != exactLimit.Rate {
			t.Errorf("%v: %d processes × %d goroutines admitted %d, want exactly %d", alg, procs, goroutines, got, exactLimit.Rate)
		}
	}
}

// TestMultiProcessChild is the child of testMultiProcess; it does nothing unless run by it.
func TestMultiProcessChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run as a child process by the multi-process tests")
	}
	f := strings.Split(spec, ";")
	if len(f) != 4 {
		t.Fatalf("bad %s=%q", childEnv, spec)
	}
	mode, addrs, prefix := f[0], strings.Split(f[1], ","), f[2]
	startNs, _ := strconv.ParseInt(f[3], 10, 64)
	opts := &Options{Prefix: prefix, Policy: ratelimit.FailError, Timeout: 5 * time.Second}
	var s *Store
	switch mode {
	case "cluster":
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, PoolSize: goroutines})
		defer c.Close()
		s = New(c, opts)
	case "rueidis":
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s = NewRueidis(c, opts)
	default:
		c := redis.NewClient(&redis.Options{Addr: addrs[0], ContextTimeoutEnabled: true, PoolSize: goroutines})
		defer c.Close()
		s = New(c, opts)
	}
	defer s.Close()
	ctx := context.Background()
	time.Sleep(time.Until(time.Unix(0, startNs)))
	for _, alg := range algorithms {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for range attempts {
					r, err := s.Take(ctx, "hot", alg, exactLimit, 1)
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		fmt.Printf("%v allowed=%d\n", alg, allowed.Load())
	}
}

// TestMultiProcess runs the multi-process test on a standalone server and on a Cluster,
// through go-redis and rueidis. Not parallel: its load would disturb the timing of the
// parallel tests, which run after it.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	addr := redistest.Addr(t)
	t.Run("standalone", func(t *testing.T) { testMultiProcess(t, "standalone", []string{addr}) })
	t.Run("rueidis", func(t *testing.T) { testMultiProcess(t, "rueidis", []string{addr}) })
	cl := redistest.StartCluster(t)
	t.Run("cluster", func(t *testing.T) { testMultiProcess(t, "cluster", cl.Addrs()) })
	t.Run("rueidis-cluster", func(t *testing.T) { testMultiProcess(t, "rueidis", cl.Addrs()) })
}
