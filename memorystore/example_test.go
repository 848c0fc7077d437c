package memorystore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func ExampleNew() {
	// At most 100,000 keys; expired keys are swept every 30 seconds.
	store := memorystore.New(&memorystore.Options{MaxKeys: 100_000, SweepInterval: 30 * time.Second})
	defer store.Close()

	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 2, Period: time.Second, Burst: 2})
	ctx := context.Background()
	for range 3 {
		r, _ := lim.Allow(ctx, "203.0.113.7")
		fmt.Println(r.Allowed, r.Remaining)
	}
	fmt.Println("keys held:", store.Len())
	// Output:
	// true 1
	// true 0
	// false 0
	// keys held: 1
}
