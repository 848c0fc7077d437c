package memorystore_test

import (
	"context"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Synctest: true,
		New:      func(t *testing.T) ratelimit.Store { return closedAtCleanup(t) },
	})
}

// closedAtCleanup returns a new store that is closed when t ends.
func closedAtCleanup(t *testing.T) *memorystore.Store {
	s := memorystore.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformanceCompiled runs the suite through CompiledLimit.Take, the path a Limiter
// takes: each call compiles its limit, then decides under the compiled one.
func TestConformanceCompiled(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Synctest: true,
		New:      func(t *testing.T) ratelimit.Store { return compiling{closedAtCleanup(t)} },
	})
}

// compiling is a Store that decides each call through Compile and CompiledLimit.Take.
type compiling struct{ *memorystore.Store }

func (c compiling) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	l, err := c.Compile(alg, limit)
	if err != nil {
		return ratelimit.Result{}, err
	}
	return l.Take(ctx, key, n)
}
