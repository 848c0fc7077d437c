package pgstore

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
)

// childEnv carries TestChild's server URL and table from the parent: "url;table".
const childEnv = "PGSTORE_TEST_CHILD"

const (
	procs      = 4
	goroutines = 16
	attempts   = 10 // per goroutine and algorithm
)

// exactLimit refills one unit per 3.65 days: during the test, nothing refills.
var exactLimit = ratelimit.Limit{Rate: 100, Period: 365 * 24 * time.Hour}

// TestMultiProcess runs 4 processes of 16 goroutines each on one key per algorithm, and
// requires that exactly the limit was admitted.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := newStore(t, nil) // creates the table
	outs := make([]bytes.Buffer, procs)
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+server.URL()+";"+s.q.name)
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
		for line := range strings.SplitSeq(outs[i].String(), "\n") {
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

// TestChild is the child process of TestMultiProcess; it does nothing unless run by it.
func TestChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run as a child process by TestMultiProcess")
	}
	url, table, _ := strings.Cut(spec, ";")
	pool := newPool(t, url, goroutines)
	ctx := context.Background()
	s, err := New(ctx, pool, &Options{Table: table, Policy: ratelimit.FailError, Timeout: 30 * time.Second, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

// TestServerRestart restarts the server while 16 goroutines take units: calls fail while
// it is down (FailError shows them), the store serves again once it is back, every
// decision reported allowed is in the table, and at most the failed calls (whose commits
// may have happened) more.
func TestServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := newStore(t, &Options{Policy: ratelimit.FailError, Timeout: 2 * time.Second, BreakerThreshold: -1})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1_000_000, Period: 100 * 365 * 24 * time.Hour}
	var allowed, failed, afterRestart atomic.Int64
	var restarted atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		alg := []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.GCRA}[g%2]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Take(ctx, "restart-"+alg.String(), alg, l, 1)
				switch {
				case err != nil:
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
				case !r.Allowed:
					t.Errorf("%v denied: %+v", alg, r)
					return
				default:
					allowed.Add(1)
					if restarted.Load() {
						afterRestart.Add(1)
					}
				}
			}
		})
	}
	waitFor(t, func() bool { return allowed.Load() >= 200 })
	server.Stop()
	if err := server.Start(); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	restarted.Store(true)
	waitFor(t, func() bool { return afterRestart.Load() >= 200 })
	close(stop)
	wg.Wait()
	if failed.Load() == 0 {
		t.Error("no call failed while the server was down")
	}
	var stored int64
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.GCRA} {
		r, err := s.Take(ctx, "restart-"+alg.String(), alg, l, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored += int64(l.Rate - r.Remaining)
	}
	t.Logf("allowed %d (%d after the restart), failed %d, stored %d", allowed.Load(), afterRestart.Load(), failed.Load(), stored)
	if stored < allowed.Load() || stored > allowed.Load()+failed.Load() {
		t.Errorf("stored %d units; want between the %d allowed and %d (allowed + failed)", stored, allowed.Load(), allowed.Load()+failed.Load())
	}
}

// waitFor polls cond for up to 60 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
