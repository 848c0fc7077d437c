package redistest

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Main runs a package's tests and examples, from its TestMain, with *addr set to a
// standalone server for its examples, which have no testing.T to start one with:
// REDIS_ADDR when set, or else a redis-server of its own, stopped when the run ends.
// Without redis-server the examples are skipped, with a line saying so (a failure when
// RequireEnv is 1), and the tests decide for themselves as everywhere else. A run of one
// test by its anchored name, as a test's child process is, starts no server: a child
// killed by its test would leave it running.
func Main(m *testing.M, addr *string) int {
	if a := os.Getenv(AddrEnv); a != "" {
		*addr = a
		return m.Run()
	}
	bin, err := lookServer()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			fmt.Fprintf(os.Stderr, "redistest: %v (%s=1)\n", err, RequireEnv)
			return 1
		}
		fmt.Fprintf(os.Stderr, "redistest: %v: the examples are skipped\n", err)
		if err := skipExamples(); err != nil {
			fmt.Fprintln(os.Stderr, "redistest:", err)
			return 1
		}
		return m.Run()
	}
	if !runsExamples() {
		return m.Run() // a child process of a test, say, which may be killed
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		fmt.Fprintln(os.Stderr, "redistest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	s := newServer(bin, dir, nil)
	if err := s.start(0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Stop()
	*addr = s.Addr()
	return m.Run()
}

// runsExamples reports whether the run may run an example (see oneTest).
func runsExamples() bool {
	flag.Parse()
	run := flag.Lookup("test.run")
	return run == nil || !oneTest(run.Value.String())
}

// oneTest reports whether a -test.run pattern is one anchored test name, ^TestX$, as a
// test starts its child processes with: such a run runs no example.
func oneTest(pattern string) bool {
	name, ok := strings.CutPrefix(pattern, "^Test")
	name, anchored := strings.CutSuffix(name, "$")
	return ok && anchored && !strings.ContainsAny(name, `|.*+?()[]{}\/^$`)
}

// skipExamples adds the examples to the run's -test.skip pattern.
func skipExamples() error {
	flag.Parse()
	skip := flag.Lookup("test.skip")
	if skip == nil {
		return fmt.Errorf("no -test.skip flag to skip the examples with")
	}
	pattern := "^Example"
	if old := skip.Value.String(); old != "" {
		pattern = old + "|" + pattern
	}
	return skip.Value.Set(pattern)
}
