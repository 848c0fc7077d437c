package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
)

// childEnv carries a child's task from the parent test: "exact;path" or "kill;path".
const childEnv = "SQLITESTORE_TEST_CHILD"

const (
	procs      = 4
	goroutines = 8
	attempts   = 20 // per goroutine and algorithm
)

// exactLimit refills one unit per 3.65 days: during the test, nothing refills.
var exactLimit = ratelimit.Limit{Rate: 100, Period: 365 * 24 * time.Hour}

// killLimit is never reached by the kill test, and refills one unit per 53 minutes.
var killLimit = ratelimit.Limit{Rate: 1_000_000, Period: 100 * 365 * 24 * time.Hour}

// TestMultiProcess runs 4 processes of 8 goroutines each on one file and one key per
// algorithm, and requires that exactly the limit was admitted.
func TestMultiProcess(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("short")
	}
	_, path := openTest(t, testOptions()) // creates the file and its tables
	storetest.RunExact(t, storetest.Exact{
		Test: "TestChild", Env: childEnv, Spec: "exact;" + path,
		Procs: procs, Algorithms: algorithms, Limit: exactLimit,
	})
}

// TestKill kills a process with SIGKILL while its goroutines take units, then reopens the
// file: every decision the process reported is there, and at most one more per goroutine
// (a decision committed whose report the kill cut off).
func TestKill(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("short")
	}
	_, path := openTest(t, testOptions())
	c := storetest.StartChild(t, "TestChild", childEnv, "kill;"+path)
	const decisions = 400
	started := c.WaitOutput(func(out string) bool { return strings.Count(out, "\ntook ") >= decisions }, time.Minute)
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait() // killed
	if !started {
		t.Fatalf("the child did not report %d decisions: %s", decisions, c.Output())
	}
	reported, err := storetest.Tally(c.Output(), "took ") // with what it wrote before it died
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.GCRA} {
		r, err := s.Take(context.Background(), "hot", alg, killLimit, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored := killLimit.Rate - r.Remaining
		if n := reported[alg.String()]; stored < n || stored > n+goroutines/2 {
			t.Errorf("%v: %d units stored after the kill, %d reported taken; want between %d and %d", alg, stored, n, n, n+goroutines/2)
		}
	}
	t.Logf("reported before the kill: %v", reported)
}

// TestChild is the child process of the tests above; it does nothing unless run by them.
func TestChild(t *testing.T) {
	task, path, _ := strings.Cut(storetest.ChildSpec(t, childEnv), ";")
	s, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if task == "kill" {
		childTakeUntilKilled(s)
		return
	}
	storetest.ChildExact(t, s, algorithms, exactLimit, goroutines, attempts)
}

// childTakeUntilKilled takes units of one key per algorithm from goroutines goroutines and
// reports each as "took ALG", one write per line, until the process is killed.
func childTakeUntilKilled(s *Store) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range goroutines {
		alg := []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.GCRA}[g%2]
		wg.Go(func() {
			for {
				r, err := s.Take(context.Background(), "hot", alg, killLimit, 1)
				if err != nil || !r.Allowed {
					fmt.Fprintf(os.Stderr, "%v: %+v, %v\n", alg, r, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "took %v\n", alg)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
