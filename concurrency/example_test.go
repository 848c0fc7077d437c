package concurrency_test

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit/concurrency"
)

func Example() {
	lim, err := concurrency.New(&concurrency.Options{
		Algorithm:    &concurrency.Vegas{}, // the default; also Gradient2, AIMD, Fixed
		InitialLimit: 2,
		MinLimit:     1,
		MaxLimit:     100,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	a, _ := lim.Acquire(ctx)
	b, _ := lim.Acquire(ctx)
	c, _ := lim.Acquire(ctx) // over the limit of 2
	fmt.Println(a.Allowed(), b.Allowed(), c.Allowed(), c.Reason())

	// Release each admitted request with its outcome; its latency is measured from
	// Acquire.
	a.Release(concurrency.Success)
	b.Release(concurrency.Dropped) // a timeout, a 503 from a dependency: overload
	fmt.Println(lim.InFlight())
	// Output:
	// true true false limit_reached
	// 0
}

func ExampleOptions_partitions() {
	lim, err := concurrency.New(&concurrency.Options{
		Algorithm:    concurrency.Fixed(10),
		InitialLimit: 10,
		Partitions:   map[string]float64{"interactive": 0.7, "batch": 0.3},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	batch := lim.Partition("batch")
	for range 10 { // batch takes the whole limit while nobody else needs it
		batch.Acquire(ctx)
	}
	extra, _ := batch.Acquire(ctx)
	interactive, _ := lim.Partition("interactive").Acquire(ctx) // below its share of 7
	fmt.Println(extra.Allowed(), interactive.Allowed(), lim.Partition("interactive").Share())
	// Output:
	// false true 7
}
