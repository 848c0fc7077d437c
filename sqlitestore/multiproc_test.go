package sqlitestore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
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

func child(t *testing.T, task, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+task+";"+path)
	return cmd
}

// TestMultiProcess runs 4 processes of 8 goroutines each on one file and one key per
// algorithm, and requires that exactly the limit was admitted.
func TestMultiProcess(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("short")
	}
	_, path := openTest(t, testOptions()) // creates the file and its tables
	outs := make([]bytes.Buffer, procs)
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := child(t, "exact", path)
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

// TestKill kills a process with SIGKILL while its goroutines take units, then reopens the
// file: every decision the process reported is there, and at most one more per goroutine
// (a decision committed whose report the kill cut off).
func TestKill(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("short")
	}
	_, path := openTest(t, testOptions())
	cmd := child(t, "kill", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reported := map[string]int{}
	sc := bufio.NewScanner(out)
	total := 0
	for sc.Scan() && total < 400 {
		if alg, ok := strings.CutPrefix(sc.Text(), "took "); ok {
			reported[alg]++
			total++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // what the child wrote before it died
		if alg, ok := strings.CutPrefix(sc.Text(), "took "); ok {
			reported[alg]++
		}
	}
	_ = cmd.Wait()
	if total < 400 {
		t.Fatalf("the child stopped after %d decisions: %s", total, stderr.String())
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
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("run as a child process by TestMultiProcess and TestKill")
	}
	task, path, _ := strings.Cut(spec, ";")
	s, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if task == "kill" {
		var mu sync.Mutex
		w := bufio.NewWriter(os.Stdout)
		var wg sync.WaitGroup
		for g := range goroutines {
			alg := []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.GCRA}[g%2]
			wg.Go(func() {
				for {
					r, err := s.Take(ctx, "hot", alg, killLimit, 1)
					if err != nil || !r.Allowed {
						fmt.Fprintf(os.Stderr, "%v: %+v, %v\n", alg, r, err)
						os.Exit(1)
					}
					mu.Lock()
					fmt.Fprintf(w, "took %v\n", alg)
					w.Flush()
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return
	}
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
