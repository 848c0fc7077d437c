// Package redisstore is a [ratelimit.Store] that keeps its state in Redis, so that many
// processes share one limit. It makes exactly the decisions of the in-memory store, for all
// six algorithms, and works with a standalone server, Redis Cluster, Sentinel (a go-redis
// failover client) and go-redis rings, through go-redis ([New]) or rueidis ([NewRueidis],
// whose automatic pipelining gives more decisions per second under concurrency;
// [DialRueidis] creates the rueidis client itself, in the background, for a service that
// must start while Redis is down).
//
//	client := redis.NewClient(&redis.Options{
//		Addr:                  "localhost:6379",
//		ContextTimeoutEnabled: true, // stop waiting at the store's deadline
//		DialerRetries:         1,    // the store retries refused dials itself, within its timeout
//	})
//	store := redisstore.New(client, nil)
//	defer store.Close()
//	limiter := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(100))
//
// [Store.TakeAll] decides several limits atomically in one script: all taken or none. On a
// Cluster the keys of one batch must share a slot (use one user key with several
// algorithms or limits).
//
// # One round trip, one clock
//
// Each decision is one EVALSHA of the algorithm's Lua script (falling back to EVAL when the
// server answers NOSCRIPT, as after a restart, a failover or SCRIPT FLUSH), which reads the
// state, decides, and writes it back atomically. Time comes from the server (TIME, in
// microseconds), so processes with skewed clocks agree; durations in a Result are exact to
// the microsecond of that clock, and instants earlier than a key's last update (a server
// clock stepping back, a failover to a server whose clock is behind) are clamped as the
// algorithms require, never over-granting.
//
// # Range
//
// Lua computes in doubles, exact for integers below 2^53. The scripts split wider products
// exactly, and keep every number they hold an exact integer, for limits with Rate and
// Burst at most 2^43 (about 8.8·10^12), and a Period that is a whole number of microseconds
// (the server clock's resolution) of at most 2^50 µs (about 35.7 years). A valid
// [ratelimit.Limit] outside that range makes Take return an error wrapping
// [ratelimit.ErrInvalidLimit]. Otherwise validation is that of every store: errors wrap
// ErrInvalidLimit, ErrInvalidCost, ErrInvalidAlgorithm and ErrInvalidKey, and nothing is
// sent to Redis.
//
// After a limit change that shortens the Period (or, for GCRA, lowers the Rate), a
// fractional unit stored under the old limit is read clamped to the microsecond rather than
// the nanosecond: a difference below one microsecond in RetryAfter and ResetAfter.
//
// # Keys
//
// The state of a key under an algorithm is one Redis key: [Options.Prefix], the user key
// inside a hash tag, and the algorithm's code, as in "ratelimit:{user:42}:tb", holding a
// short string ("tat:fraction" for GCRA, or the TAT alone, an integer, when the fraction is
// 0, as it always is when Period/Rate is a whole number of microseconds) or, for
// SlidingWindowLog, a list with one entry
// per microsecond at which units were allowed in the last Period. The hash tag
// is under the store's control whatever bytes the user key holds ('}' and '%' are escaped),
// so a decision never spans Cluster slots and keys spread over the slots by user key. Every
// write sets a TTL no longer than the state matters (the window's end, the time until a
// bucket is full again), so idle keys vanish by themselves. With maxmemory, use a
// volatile-* eviction policy: allkeys-lru would evict live counters and over-admit.
//
// # Failures
//
// A call to Redis is bounded by [Options.Timeout]. It is retried, within that budget, only
// after errors that prove the script did not run (a failed dial, a connection pool timeout,
// LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, READONLY); the script is sent to
// go-redis marked as not retryable, and rueidis retries only read-only commands, so the
// client's own retries never run it twice. A call that times out or loses its connection after sending may have consumed: it counts
// as a failure, and the units may be taken although the caller got a policy answer.
//
// After [Options.BreakerThreshold] consecutive failures the circuit breaker opens: for
// [Options.BreakerCooldown] calls are answered by policy at once, without waiting on a dead
// server. Then a single call probes Redis; success closes the breaker, failure reopens it.
//
// While Redis fails, calls are answered by [Options.Policy], a [ratelimit.FailPolicy]:
//
//   - [ratelimit.FailLocal], the default, answers from an in-memory store with the same algorithm and
//     limit. It is what an operator wants from a shared limiter whose backend went away:
//     the service keeps serving (unlike fail closed) and abusers are still limited (unlike
//     fail open), at the price of each process enforcing the whole limit by itself, so k
//     processes admit up to k times the limit during the outage.
//   - [ratelimit.FailOpen] allows everything; [ratelimit.FailClosed] denies everything.
//   - [ratelimit.FailError] returns the error, for callers that decide themselves.
//
// Policy answers return a nil error, so that [ratelimit.Limiter.Wait], [ratelimit.Limiter.Do]
// and middleware keep working; they are not silent: [Options.OnError] receives each
// failure (wrapping the backend's error, or [ratelimit.ErrCircuitOpen] while the breaker is open),
// and [Store.Stats] counts failures, retries, policy answers and breaker openings. Errors
// that are not about availability (a key holding another type, a reply the scripts never
// send) are returned to the caller whatever the policy; the caller's own context ending is
// returned as its error. The store never logs.
//
// Redis replicates asynchronously: a failover may lose the last updates of a key, and a
// promoted replica then admits again what the lost writes had taken (a few calls' worth).
//
// # Memory
//
// Measured on Redis 7.0 (used_memory over 100,000 keys "user:N" under the default prefix,
// one unit taken each under a limit of 100 per day): 133 bytes per key for GCRA, whose
// state is an integer when Period/Rate is a whole number of microseconds (165 otherwise),
// 155 for FixedWindow, 165 for TokenBucket, LeakyBucket and SlidingWindowCounter, and 259
// to 261 for SlidingWindowLog with one entry; redis_rate takes 163. 133 bytes is the floor
// of any layout with one Redis key and a TTL per user key and a value that is not one of
// Redis's shared small integers: a key name of 13 to 28 bytes takes as much as one of 28
// (a shorter prefix or algorithm code saves nothing for keys like these), and a hash with
// one-letter fields takes what a short string does.
//
// # Circuit breaker scope
//
// The breaker is one per Store, over all of Redis: on a Cluster with one shard down the
// calls to the healthy shards keep it closed, and the calls for keys of the failed shard
// each fail fast (refused dials) until the replica is promoted.
//
// # Clients
//
// The caller owns the client; [Store.Close] leaves it open. For go-redis, create it with
// ContextTimeoutEnabled: true so that go-redis stops waiting at the store's deadline
// (without it the client's ReadTimeout, 3s by default, bounds a call to a hung server), and
// with DialerRetries: 1 (go-redis otherwise retries a refused dial five times, 100ms apart,
// spending the store's whole timeout on a server that is down). For Cluster, set
// ClusterStateReloadInterval to about a second: with the default of 60s go-redis takes up to
// a minute to notice a failover. rueidis honours context deadlines and refreshes its
// Cluster topology on errors by itself.
package redisstore
