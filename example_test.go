package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func Example() {
	store := memorystore.New(nil)
	defer store.Close()
	// 3 requests per minute per user, as a sliding window.
	lim := ratelimit.New(store, ratelimit.SlidingWindowLog, ratelimit.PerMinute(3))

	ctx := context.Background()
	for i := range 4 {
		r, err := lim.Allow(ctx, "user:alice")
		if err != nil {
			panic(err)
		}
		fmt.Printf("request %d: allowed=%v remaining=%d\n", i+1, r.Allowed, r.Remaining)
	}
	// Output:
	// request 1: allowed=true remaining=2
	// request 2: allowed=true remaining=1
	// request 3: allowed=true remaining=0
	// request 4: allowed=false remaining=0
}

func ExampleLimiter_Allow() {
	store := memorystore.New(nil)
	defer store.Close()
	// A bucket of 5 that refills at 10 per minute: one token every 6 seconds.
	lim := ratelimit.New(store, ratelimit.TokenBucket, ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 5})

	ctx := context.Background()
	r, _ := lim.AllowN(ctx, "client:1", 5)
	fmt.Println("burst of 5 allowed:", r.Allowed)
	r, _ = lim.Allow(ctx, "client:1")
	fmt.Println("sixth allowed:", r.Allowed, "retry after:", r.RetryAfter.Round(time.Second))
	r, _ = lim.Allow(ctx, "client:2")
	fmt.Println("another key allowed:", r.Allowed, "remaining:", r.Remaining)
	// Output:
	// burst of 5 allowed: true
	// sixth allowed: false retry after: 6s
	// another key allowed: true remaining: 4
}

func ExampleLimiter_Wait() {
	store := memorystore.New(nil)
	defer store.Close()
	// A shaper: one request every 10ms, no bursts.
	lim := ratelimit.New(store, ratelimit.LeakyBucket, ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 1})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	for range 3 {
		if err := lim.Wait(ctx, "outbound"); err != nil {
			panic(err)
		}
	}
	fmt.Println("3 requests spaced 10ms apart took at least 20ms:", time.Since(start) >= 20*time.Millisecond)
	// Output:
	// 3 requests spaced 10ms apart took at least 20ms: true
}

func ExampleLimiter_Do() {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(1))

	send := func(context.Context) error { fmt.Println("email sent"); return nil }
	ctx := context.Background()
	for range 2 {
		err := lim.Do(ctx, "email:bob", send)
		var limited *ratelimit.LimitedError
		if errors.As(err, &limited) {
			fmt.Println("not sent: retry after", limited.Result.RetryAfter.Round(time.Second))
		}
	}
	// Output:
	// email sent
	// not sent: retry after 1h0m0s
}

func ExampleWrap() {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1))

	lookup := func(_ context.Context, user string) (string, error) { return "profile of " + user, nil }
	limited := ratelimit.Wrap(lim, func(user string) string { return "lookup:" + user }, lookup)

	ctx := context.Background()
	p, err := limited(ctx, "carol")
	fmt.Println(p, err)
	_, err = limited(ctx, "carol")
	fmt.Println(errors.Is(err, ratelimit.ErrLimited))
	// Output:
	// profile of carol <nil>
	// true
}

func ExampleParseLimit() {
	for _, s := range []string{"10/s", "100 per minute", "5/30s burst 2"} {
		l, err := ratelimit.ParseLimit(s)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-16q rate=%d period=%v burst=%d, written %q\n", s, l.Rate, l.Period, l.Burst, l)
	}
	// Output:
	// "10/s"           rate=10 period=1s burst=0, written "10/s"
	// "100 per minute" rate=100 period=1m0s burst=0, written "100/m"
	// "5/30s burst 2"  rate=5 period=30s burst=2, written "5/30s burst 2"
}
