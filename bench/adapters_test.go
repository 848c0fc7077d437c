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
	{"x-time-rate-mutex", openXTimeMutex},
	{"x-time-rate-rwmutex", openXTimeRWMutex},
	{"x-time-rate-syncmap", openXTimeSyncMap},
	{"sethvargo-go-limiter", openGoLimiter},
	{"ulule-limiter", openUlule},
	{"throttled", openThrottled},
}

// openOurs uses memorystore.New(nil), the defaults, through a ratelimit.Limiter.
func openOurs(alg ratelimit.Algorithm) func(int, time.Duration) (*instance, error) {
	return func(burst int, period time.Duration) (*instance, error) {
		store := memorystore.New(nil)
		lim := ratelimit.New(store, alg, ratelimit.Limit{Rate: burst, Period: period})
		allow := func(ctx context.Context, key string) (bool, error) {
			r, err := lim.Allow(ctx, key)
			return r.Allowed, err
		}
		return &instance{allow: allow, close: func() { store.Close() }, keys: store.Len}, nil
	}
}

// newXTime returns a fresh *rate.Limiter for one key.
func newXTime(burst int, period time.Duration) func() *rate.Limiter {
	r := rate.Limit(float64(burst) / period.Seconds())
	return func() *rate.Limiter { return rate.NewLimiter(r, burst) }
}

// openXTimeMutex keeps one *rate.Limiter per key in a map guarded by a sync.Mutex.
func openXTimeMutex(burst int, period time.Duration) (*instance, error) {
	newLimiter := newXTime(burst, period)
	var mu sync.Mutex
	m := make(map[string]*rate.Limiter)
	allow := func(_ context.Context, key string) (bool, error) {
		mu.Lock()
		l, ok := m[key]
		if !ok {
			l = newLimiter()
			m[key] = l
		}
		mu.Unlock()
		return l.Allow(), nil
	}
	return &instance{allow: allow, close: func() {}}, nil
}

// openXTimeRWMutex keeps one *rate.Limiter per key in a map guarded by a sync.RWMutex:
// lookups share the read lock, inserts take the write lock.
func openXTimeRWMutex(burst int, period time.Duration) (*instance, error) {
	newLimiter := newXTime(burst, period)
	var mu sync.RWMutex
	m := make(map[string]*rate.Limiter)
	allow := func(_ context.Context, key string) (bool, error) {
		mu.RLock()
		l, ok := m[key]
		mu.RUnlock()
		if !ok {
			mu.Lock()
			if l, ok = m[key]; !ok {
				l = newLimiter()
				m[key] = l
			}
			mu.Unlock()
		}
		return l.Allow(), nil
	}
	return &instance{allow: allow, close: func() {}}, nil
}

// openXTimeSyncMap keeps one *rate.Limiter per key in a sync.Map.
func openXTimeSyncMap(burst int, period time.Duration) (*instance, error) {
	newLimiter := newXTime(burst, period)
	var m sync.Map
	allow := func(_ context.Context, key string) (bool, error) {
		v, ok := m.Load(key)
		if !ok {
			v, _ = m.LoadOrStore(key, newLimiter())
		}
		return v.(*rate.Limiter).Allow(), nil
	}
	return &instance{allow: allow, close: func() {}}, nil
}

// openGoLimiter uses sethvargo/go-limiter's memorystore with its default sweep settings.
func openGoLimiter(burst int, period time.Duration) (*instance, error) {
	store, err := golimitermem.New(&golimitermem.Config{Tokens: uint64(burst), Interval: period})
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

// openThrottled uses throttled's GCRA rate limiter on its memstore without a key bound
// (maxKeys 0: a plain map; a positive bound switches to an LRU, which is slower).
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
	allow := func(ctx context.Context, key string) (bool, error) {
		limited, _, err := lim.RateLimitCtx(ctx, key, 1)
		return !limited, err
	}
	return &instance{allow: allow, close: func() {}}, nil
}
