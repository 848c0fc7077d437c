// Package redisstore is a [ratelimit.Store] that keeps its state in Redis, so that many
// processes share one limit. It makes exactly the decisions of the in-memory store, for all
// six algorithms, and works with a standalone server, Redis Cluster, Sentinel (a go-redis
// failover client) and go-redis rings.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
//	store := redisstore.New(client, nil)
//	defer store.Close()
//	limiter := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(100))
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
// inside a hash tag, and the algorithm's code, as in "ratelimit:{user:42}:tb". The hash tag
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
// go-redis marked as not retryable, so the client's own MaxRetries never runs it twice. A
// call that times out or loses its connection after sending may have consumed: it counts
// as a failure, and the units may be taken although the caller got a policy answer.
//
// After [Options.BreakerThreshold] consecutive failures the circuit breaker opens: for
// [Options.BreakerCooldown] calls are answered by policy at once, without waiting on a dead
// server. Then a single call probes Redis; success closes the breaker, failure reopens it.
//
// While Redis fails, calls are answered by [Options.Policy]:
//
//   - [FailLocal], the default, answers from an in-memory store with the same algorithm and
//     limit. It is what an operator wants from a shared limiter whose backend went away:
//     the service keeps serving (unlike fail closed) and abusers are still limited (unlike
//     fail open), at the price of each process enforcing the whole limit by itself, so k
//     processes admit up to k times the limit during the outage.
//   - [FailOpen] allows everything; [FailClosed] denies everything.
//   - [FailError] returns the error, for callers that decide themselves.
//
// Policy answers return a nil error, so that [ratelimit.Limiter.Wait], [ratelimit.Limiter.Do]
// and middleware keep working; they are not silent: [Options.OnError] receives each
// failure (wrapping the backend's error, or [ErrCircuitOpen] while the breaker is open),
// and [Store.Stats] counts failures, retries, policy answers and breaker openings. Errors
// that are not about availability (a key holding another type, a reply the scripts never
// send) are returned to the caller whatever the policy; the caller's own context ending is
// returned as its error. The store never logs.
//
// Redis replicates asynchronously: a failover may lose the last updates of a key, and a
// promoted replica then admits again what the lost writes had taken (a few calls' worth).
//
// # Clients
//
// The caller owns the client; [Store.Close] leaves it open. Create it with
// ContextTimeoutEnabled: true so that go-redis stops waiting at the store's deadline;
// without it the client's ReadTimeout (3s by default) bounds a call to a hung server.
// For Cluster, set ClusterStateReloadInterval to about a second: with the default of 60s
// go-redis takes up to a minute to notice a failover.
package redisstore
