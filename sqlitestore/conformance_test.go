package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
)

// openTest opens a store on a fresh file under t's temporary directory, closed at cleanup.
func openTest(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "limits.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, path
}

// testOptions make failures visible: tests see errors unless they ask for a policy. The
// sweeper runs hourly: under synctest the suite's long sleeps would otherwise run it at
// every fake second (TestSweep tests it).
func testOptions() *Options {
	return &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 10 * time.Second}, SweepInterval: time.Hour}
}

func TestConformance(t *testing.T) {
	skipUnderRace(t)
	storetest.Run(t, storetest.Harness{
		Synctest: true,
		New: func(t *testing.T) ratelimit.Store {
			s, _ := openTest(t, testOptions())
			return s
		},
	})
}

// skipUnderRace skips a test that makes too many calls to finish under the race detector
// (see race_test.go).
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("too slow under the race detector; .ci/test runs it without")
	}
}
