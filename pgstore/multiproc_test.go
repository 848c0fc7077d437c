package pgstore

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
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
	storetest.RunExact(t, storetest.Exact{
		Test: "TestChild", Env: childEnv, Spec: server.URL() + ";" + s.q.name,
		Procs: procs, Algorithms: algorithms, Limit: exactLimit,
	})
}

// TestChild is the child process of TestMultiProcess; it does nothing unless run by it.
func TestChild(t *testing.T) {
	url, table, _ := strings.Cut(storetest.ChildSpec(t, childEnv), ";")
	pool := newPool(t, url, goroutines)
	s, err := New(context.Background(), pool, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 30 * time.Second}, Table: table, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.ChildExact(t, s, algorithms, exactLimit, goroutines, attempts)
}

// TestServerRestart restarts the server while 16 goroutines take units: calls fail while
// it is down (FailError shows them), the store serves again once it is back, every
// decision reported allowed is in the table, and at most the failed calls (whose commits
// may have happened) more.
func TestServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := newStore(t, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 2 * time.Second, BreakerThreshold: -1}})
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
