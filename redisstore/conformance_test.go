package redisstore

import (
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
)

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
