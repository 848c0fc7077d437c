package storetest

import (
	"bytes"
	"fmt"
	"io"
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

// Child is a copy of the running test binary running one test of its package in another
// process, for the tests of stores that processes share. Its standard output and error are
// collected; its standard input is a pipe.
type Child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   lockedBuffer
}

// StartChild starts the test binary running only the test named test, verbosely, with
// env=spec added to its environment; the child's test reads spec with [ChildSpec].
func StartChild(t testing.TB, test, env, spec string) *Child {
	t.Helper()
	c := &Child{cmd: exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")}
	c.cmd.Env = append(os.Environ(), env+"="+spec)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// ChildSpec returns the spec [StartChild] gave the child under env, and skips t when there
// is none: the child's test was run by go test itself rather than by a parent test.
func ChildSpec(t *testing.T, env string) string {
	t.Helper()
	spec := os.Getenv(env)
	if spec == "" {
		t.Skipf("run as a child process by another test (%s unset)", env)
	}
	return spec
}

// Stdin is the child's standard input.
func (c *Child) Stdin() io.WriteCloser { return c.stdin }

// Output returns what the child has written so far, standard output and error.
func (c *Child) Output() string { return c.out.String() }

// WaitOutput waits until cond holds of the child's output, for at most timeout, and
// reports whether it does.
func (c *Child) WaitOutput(cond func(out string) bool, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); !cond(c.Output()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Kill kills the child with SIGKILL: it ends wherever it is, as in a crash.
func (c *Child) Kill() error { return c.cmd.Process.Signal(syscall.SIGKILL) }

// Wait waits for the child to exit and for its output to be collected, and returns its
// exit error.
func (c *Child) Wait() error {
	c.stdin.Close()
	return c.cmd.Wait()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tally counts the lines of out that start with prefix, by the word after it: for
// "took gcra" lines, Tally(out, "took ") has a count for "gcra". A line "PREFIXword=N"
// counts N instead of 1.
func Tally(out, prefix string) (map[string]int, error) {
	counts := map[string]int{}
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		word, n, hasN := strings.Cut(rest, "=")
		k := 1
		if hasN {
			var err error
			if k, err = strconv.Atoi(n); err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
		}
		counts[word] += k
	}
	return counts, nil
}

// Exact is a multi-process test of exactness: Procs children, each running Test with Spec
// under Env, take units of one key per algorithm (see [ChildExact]); summed over the
// children, each algorithm must have admitted exactly Limit.Rate.
type Exact struct {
	Test, Env, Spec string
	Procs           int
	Algorithms      []ratelimit.Algorithm
	Limit           ratelimit.Limit
}

// RunExact runs e.
func RunExact(t *testing.T, e Exact) {
	t.Helper()
	children := make([]*Child, e.Procs)
	for i := range children {
		children[i] = StartChild(t, e.Test, e.Env, e.Spec)
	}
	totals := map[string]int{}
	for i, c := range children {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.Output())
		}
		counts, err := Tally(c.Output(), "admitted ")
		if err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		for alg, n := range counts {
			totals[alg] += n
		}
	}
	t.Logf("admitted per algorithm: %v", totals)
	for _, alg := range e.Algorithms {
		if got := totals[alg.String()]; got != e.Limit.Rate {
			t.Errorf("%v: %d processes admitted %d, want exactly %d", alg, e.Procs, got, e.Limit.Rate)
		}
	}
}

// ChildExact is the work of one child of [RunExact]: for each algorithm in turn,
// goroutines goroutines make attempts calls each of s.Take(key "hot", limit, 1); then it
// prints "admitted ALG=N", the units admitted.
func ChildExact(t *testing.T, s ratelimit.Store, algs []ratelimit.Algorithm, limit ratelimit.Limit, goroutines, attempts int) {
	t.Helper()
	ctx := t.Context()
	for _, alg := range algs {
		var admitted atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for range attempts {
					r, err := s.Take(ctx, "hot", alg, limit, 1)
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		fmt.Printf("admitted %v=%d\n", alg, admitted.Load())
	}
}
