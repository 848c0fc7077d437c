package memorystore_test

import (
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Synctest: true,
		New: func(t *testing.T) ratelimit.Store {
			s := memorystore.New(nil)
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}
