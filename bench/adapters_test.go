package bench

import (
	"context"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	golimitermem "github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	throttledmem "github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ululemem "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"
)

// allowFunc takes one unit of key and reports whether it was allowed.
type allowFunc func(ctx context.Context, key string) (bool, error)

// instance is one open limiter.
type instance struct {
	allow allowFunc
	close func()
	// keys, when not nil, returns the number of keys the store holds.
	keys func() int
}

// adapter builds one library's keyed limiter: each key may pass burst units at once and
// refills (or resets its window) at burst units per period.
type adapter struct {
	name string
	// open returns the limiter and a function that releases it.
	open func(burst int, period time.Duration) (*instance, error)
}

// adapters lists the libraries compared, ours first.
var adapters = []adapter{
	{"ratelimit-gcra", openOurs(ratelimit.GCRA)},
	{"ratelimit-token_bucket", openOurs(ratelimit.TokenBucket)},
	{"ratelimit-fixed_window", openOurs(ratelimit.FixedWindow)},
	{"ratelimit-leaky_bucket", openOurs(ratelimit.LeakyBucket)},
	{"ratelimit-sliding_window_counter", openOurs(ratelimit.SlidingWindowCounter)},
	{"ratelimit-sliding_window_log", openOurs(ratelimit.SlidingWindowLog)},
	{"x-time-rate", openXTime},
	{"sethvargo-go-limiter", openGoLimiter},
	{"ulule-limiter", openUlule},
	{"throttled", openThrottled},
}

// openOurs uses memorystore.New(nil), the defaults, through a ratelimit.Limiter, called
// through an allowFunc as every peer is. For SlidingWindowLog the store holds twice the
// default MaxKeys: a log of one instant counts as two keys, and BenchmarkMemoryPerKey
// checks that none of its keys was evicted.
func openOurs(alg ratelimit.Algorithm) func(int, time.Duration) (*instance, error) {
	return func(burst int, period time.Duration) (*instance, error) {
		var opts *memorystore.Options
		if alg == ratelimit.SlidingWindowLog {
			opts = &memorystore.Options{MaxKeys: 2 << 20}
		}
		store := memorystore.New(opts)
		lim := ratelimit.New(store, alg, ratelimit.Limit{Rate: burst, Period: period})
		allow := func(ctx context.Context, key string) (bool, error) {
			r, err := lim.Allow(ctx, key)
			return r.Allowed, err
		}
		return &instance{allow: allow, close: func() { store.Close() }, keys: store.Len}, nil
	}
}

// openXTime keeps one *rate.Limiter per key in a sync.Map. Of the three usual ways to key
// x/time/rate (a map under a sync.Mutex, under a sync.RWMutex, or a sync.Map), sync.Map
// was the fastest here on one hot key and on many keys, and tied under contention; it
// uses more memory per key than a plain map (see BENCHMARKS.md).
func openXTime(burst int, period time.Duration) (*instance, error) {
	r := rate.Limit(float64(burst) / period.Seconds())
	var m sync.Map
	allow := func(_ context.Context, key string) (bool, error) {
		v, ok := m.Load(key)
		if !ok {
			v, _ = m.LoadOrStore(key, rate.NewLimiter(r, burst))
		}
		return v.(*rate.Limiter).Allow(), nil
	}
	return &instance{allow: allow, close: func() {}}, nil
}

// openGoLimiter uses sethvargo/go-limiter's memorystore with its default sweep settings.
//
// go-limiter v0.7.1 refills interval/tokens tokens (interval in nanoseconds) per elapsed
// interval instead of tokens, which is wrong when tokens² exceeds the interval in
// nanoseconds (sethvargo/go-limiter#29): at 1e9 per second a key gets 1 token per second
// after the first. For such limits we stretch the interval by a factor of tokens, where
// its refill is right again; a key still starts with all its tokens, and no benchmark
// runs long enough to spend them.
func openGoLimiter(burst int, period time.Duration) (*instance, error) {
	interval := period
	if float64(burst)*float64(burst) > float64(period) {
		interval = period * time.Duration(burst)
	}
	store, err := golimitermem.New(&golimitermem.Config{Tokens: uint64(burst), Interval: interval})
	if err != nil {
		return nil, err
	}
	allow := func(ctx context.Context, key string) (bool, error) {
		_, _, _, ok, err := store.Take(ctx, key)
		return ok, err
	}
	return &instance{allow: allow, close: func() { store.Close(context.Background()) }}, nil
}

// openUlule uses ulule/limiter's memory store with its defaults (a fixed window).
func openUlule(burst int, period time.Duration) (*instance, error) {
	lim := ulule.New(ululemem.NewStore(), ulule.Rate{Period: period, Limit: int64(burst)})
	allow := func(ctx context.Context, key string) (bool, error) {
		c, err := lim.Get(ctx, key)
		return !c.Reached, err
	}
	return &instance{allow: allow, close: func() {}}, nil
}

// throttledCASAttempts is the number of compare-and-swap attempts throttled may make per
// call; its default is 10.
const throttledCASAttempts = 1000

// openThrottled uses throttled's GCRA rate limiter on its memstore without a key bound
// (maxKeys 0: a plain map; a positive bound switches to an LRU, which is slower).
//
// throttled reads a key's state, computes, and compare-and-swaps, retrying up to 10 times
// by default before failing the call with an error; on one key shared by two goroutines
// some calls failed so in our runs. We allow throttledCASAttempts so that every call
// completes and the benchmark counts the retries' cost rather than errors.
func openThrottled(burst int, period time.Duration) (*instance, error) {
	store, err := throttledmem.NewCtx(0)
	if err != nil {
		return nil, err
	}
	quota := throttled.RateQuota{MaxRate: throttled.PerDuration(burst, period), MaxBurst: burst - 1}
	lim, err := throttled.NewGCRARateLimiterCtx(store, quota)
	if err != nil {
		return nil, err
	}
	lim.SetMaxCASAttemptsLimit(throttledCASAttempts)
	allow := func(ctx context.Context, key string) (bool, error) {
		limited, _, err := lim.RateLimitCtx(ctx, key, 1)
		return !limited, err
	}
	return &instance{allow: allow, close: func() {}}, nil
}
