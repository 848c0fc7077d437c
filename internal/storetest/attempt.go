package storetest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// reporter is where a test body reports: its subtest, or one attempt at it.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// attempts is how many times runTimed runs a test of time against a real clock before
// it takes the last run's findings, late or not.
const attempts = 5

// attempt is one run of a test of time against a real clock. It keeps the run's errors
// until the run is over, and watches its schedule: each call is planned at an instant
// (the first call, then each sleep moves the plan on by what it slept, or to the instant
// it aligns to), and late is the most that a call ended after its planned instant.
type attempt struct {
	t    *testing.T
	errs []string
	due  time.Time     // the planned instant of the next call; zero before the first
	late time.Duration // the most a call ended after its planned instant
}

func (a *attempt) Helper() { a.t.Helper() }

func (a *attempt) Errorf(format string, args ...any) {
	a.errs = append(a.errs, fmt.Sprintf(format, args...))
}

// Fatalf records the error and ends the run; runTimed runs each attempt on a goroutine
// of its own.
func (a *attempt) Fatalf(format string, args ...any) {
	a.Errorf(format, args...)
	runtime.Goexit()
}

// observe records a call that started and ended at the instants given.
func (a *attempt) observe(start, end time.Time) {
	if a.due.IsZero() {
		a.due = start
	}
	a.late = max(a.late, end.Sub(a.due))
}

// budget is how late a call of a test of time may end for the test's checks to hold:
// a sixth of the Period. Every test of time leaves its checks a margin above it: the
// refill test, the tightest, is 0.95 Period of plan plus lateness away from its next unit.
func (s *suite) budget() time.Duration { return s.period / 6 }

// runTimed runs f as the subtest name, as run does, for a test of time. Under synctest
// it runs f once. With a real clock it runs f in attempts, each on a fresh store and with
// its own copy of the suite, whose time scale doubles from one attempt to the next. An
// attempt one of whose calls ended more than the budget after its planned instant was
// descheduled for longer than the checks allow, so what it found proves nothing either
// way; the first attempt on time decides, and its errors are the subtest's. When every
// attempt is late, the last one decides.
func (s *suite) runTimed(t *testing.T, name string, f func(s *suite, t reporter, st ratelimit.Store)) {
	t.Helper()
	if s.h.Synctest {
		s.run(t, name, func(t *testing.T, st ratelimit.Store) { f(s, t, st) })
		return
	}
	t.Run(name, func(t *testing.T) {
		for i := range attempts {
			sc := *s
			sc.scale <<= i
			sc.period <<= i
			sc.slack <<= i
			a := &attempt{t: t}
			sc.clock = a
			st := s.h.New(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				f(&sc, a, st)
			}()
			<-done
			if a.late <= sc.budget() || i == attempts-1 {
				if a.late > sc.budget() && len(a.errs) > 0 {
					t.Errorf("every attempt ran late; the last, at Period %v, ended a call %v after its planned instant (budget %v)", sc.period, a.late, sc.budget())
				}
				for _, e := range a.errs {
					t.Error(e)
				}
				return
			}
			t.Logf("attempt %d at Period %v ended a call %v after its planned instant, beyond the budget %v (%d errors, inconclusive): trying again at twice the time scale",
				i+1, sc.period, a.late, sc.budget(), len(a.errs))
		}
	})
}
