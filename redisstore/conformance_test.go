package redisstore

import (
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
)

// The conformance suite sleeps for real and checks durations to a few milliseconds: its
// runs are parallel with each other and with the light tests, and the tests that load the
// machine (TestMultiProcess, TestKillRestart, TestClusterFailover) are not parallel, so
// that they run before.

func TestConformance(t *testing.T) {
	t.Parallel()
	addr := redistest.Addr(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) ratelimit.Store { return newStoreOn(t, newClient(t, addr), nil) },
	})
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	cl := redistest.StartCluster(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) ratelimit.Store { return newStoreOn(t, cl.Client(t), nil) },
	})
}

func TestConformanceRueidis(t *testing.T) {
	t.Parallel()
	addr := redistest.Addr(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) ratelimit.Store { return newRueidisStore(t, newRueidis(t, addr), nil) },
	})
}

func TestConformanceRueidisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	cl := redistest.StartCluster(t)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) ratelimit.Store { return newRueidisStore(t, newRueidis(t, cl.Addrs()...), nil) },
	})
}
