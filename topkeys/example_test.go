package topkeys_test

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/go-ratelimit/ratelimit/topkeys"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()
	top := topkeys.New(nil)
	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerHour(3),
		&ratelimit.Options{Name: "login", KeyClass: "user", Observer: top})

	ctx := context.Background()
	for range 5 {
		lim.Allow(ctx, "mallory")
	}
	lim.Allow(ctx, "alice")

	for _, k := range top.Top(10) {
		fmt.Printf("%s: %d denied of %d (%.0f%%)\n", k.Key, k.Denied, k.Total(), 100*k.DenyRatio())
	}
	fmt.Println("all keys:", top.Global().Total(), "decisions")
	// Output:
	// mallory: 2 denied of 5 (40%)
	// all keys: 6 decisions
}
