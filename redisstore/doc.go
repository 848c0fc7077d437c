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
// Through a go-redis client of one server (a *redis.Client, which Sentinel's failover
// client also is), the scripts of concurrent calls share pipelines, as rueidis does by
// itself: a call that finds fewer than eight round trips of the store in flight is sent
// at once, and the calls that arrive while eight are go together in the next to leave. A
// lone caller waits no longer; under concurrency Redis reads and writes once for many
// decisions, which is most of what a decision costs it. Each script still runs atomically and is sent at most once,
// and a queued call still returns by its own deadline. The client's hooks see these
// calls as pipelines; [Options.SendAlone] sends each script alone. Cluster and Ring
// clients send each script alone, so that one slow shard holds no call of another.
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
// The integrations start their user keys with the rule's name and its length
// ("ratelimit:{3:api:k:203.0.113.9}:gcra" for httplimit's rule "api" and a client
// address), and ratelimitd with the domain and each descriptor entry, each preceded by its
// length. None of these adds an unprintable byte, so with printable user keys and
// descriptor values `redis-cli --scan --pattern 'ratelimit:*'` lists the keys as they are.
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
// # Leases: decisions from local memory
//
// [LeaseStore] ([NewLease]) is the eventually consistent mode: each process takes units of
// a key from Redis in chunks, its lease, and spends them from local memory. A decision is a
// lock and a few integers, never a round trip; refills are sent in the background, many
// keys per pipelined round trip, as soon as a lease falls below half its size; keys that
// nobody asks about cost nothing, and a key idle for [LeaseOptions.IdleAfter] gives its
// unspent units back and leaves memory. [LeaseOptions.MaxKeys] bounds the keys in local
// memory: a new key beyond it evicts the least recently used of a sample of its shard,
// whose unspent units are given back in the next round trip, as an idle key's are (a
// release that fails counts them in lost(W) below). A LeaseStore shares its keys with a
// [Store] of the same prefix: strict and leased processes can share one limit, and
// [NewLeaseFrom] builds one on the client of a Store, go-redis or rueidis.
//
// A key's first decision finds no lease: it is denied while the first grant is on its
// way, unless [LeaseOptions.FirstWait] lets it wait for that grant (a service in front
// of users should, so that no user's first request is refused for want of a lease).
//
// A grant runs the algorithm's own script step, the one single decisions run, with n the
// lesser of the lease size and what the key has left, so Redis holds exactly the state
// that many single decisions would have left. Leases suit the algorithms whose state is a
// count per epoch-aligned window, so that a unit granted at one instant of a window may be
// spent at any later instant of the same window without admitting anything the algorithm
// would not: [ratelimit.FixedWindow] and [ratelimit.SlidingWindowCounter]. The others are
// rejected with [ratelimit.ErrInvalidAlgorithm]: a sliding window log counts the instants
// of admissions, and the buckets refill continuously, so a unit granted at t and spent at
// t' > t is one the algorithm might refuse at t' (tokens taken when full and spent in a
// burst later exceed the bucket).
//
// Let L be the limit's Rate, ε [LeaseOptions.Accuracy], b = max(1, ⌊ε·L⌋) the largest
// lease a process holds of a key, and N the processes sharing the key. For every key and
// every window W of the Redis clock:
//
//	admitted(W) ≤ L                                        (no over-admission)
//	admitted(W) ≥ min(demand(W), L) − N·b − lost(W)         (under-admission)
//
// where lost(W) counts the units of grants whose reply was lost and of processes that
// crashed holding a lease; the second line holds when every process keeps asking until the
// window ends and refills come back within it. [LeaseStats.Lost] counts the first kind.
//
// Proof of the first line. Let C(W) be the count Redis holds for W. The grant script runs
// atomically and takes g = min(want, remaining) units by the algorithm's step, so C(W) ≤ L
// always (for the sliding window counter, its current-window count). A release subtracts
// only units the process held unspent, and only if W is still the window the key's state
// holds; it is never retried (go-redis is told not to, and the store resends only after
// NOSCRIPT, which proves it did not run), so it is applied at most once. A process spends a
// unit at most once, under the lease's lock, only from a grant whose reply it received, and
// drops the units it releases. So admitted(W) ≤ granted(W) − released(W) = C(W) ≤ L.
// A grant in flight gives nothing to spend until its reply arrives; the units already in
// hand are already in C(W). A reply lost after Redis applied the grant (a timeout, a
// broken connection) leaves units counted in C(W) that nobody spends: under-admission,
// never over-admission, so grants need no sequence numbers; releases, which could
// over-admit if applied twice, are sent at most once instead. Every admission under a
// lease of W happens inside W: the reply comes after the script ran, at or after W's
// start, and the lease expires locally at the instant of sending plus the time the script
// saw until W's end, which is at or before W's end since the script runs after the request
// is sent (only durations cross from the Redis clock to the process's, so their offset
// does not matter; their rates agree to parts per million). For the sliding window
// counter, the admitted units of W and of the window before are subsets of the granted
// ones, each spent no earlier than its grant and within its window; the weight of the
// previous window only decreases within a window, so at every instant the estimate over
// the admitted units is at most the estimate at the last grant, which the script kept
// within L.
//
// Proof of the second line. When W ends with demand above L unmet, each process asked
// again whenever its lease ran below half, so Redis granted until C(W) = L, or until the
// window ended; the units of C(W) not admitted are those held unspent (at most b per
// process) and the lost ones.
//
// During outages: while Redis is unreachable or hung, decisions go on spending the leases
// in hand, never waiting (a round trip is bounded by the Timeout, 500ms by default, and
// the breaker); a decision the lease cannot serve is answered by [Options.Policy]. With
// [ratelimit.FailClosed] or [ratelimit.FailError] the bound above holds throughout; with
// the default [ratelimit.FailLocal] each process also admits up to L of its own per window
// while Redis is down, so up to L + N·L. A Redis that restarts without its data (no
// persistence, or a failover that lost the last writes) forgets C(W): a window in which it
// restarts r times admits up to (r + 1)·L, as the strict store does. Units granted before
// an outage and unspent are given back on recovery only if the process releases them
// (idle, or Close) while W lasts; otherwise they expire with W. [LeaseStore.Close] gives
// back every unspent unit in one round trip bounded by its context and the Timeout.
//
// Measured (BENCHMARKS.md has the commands; 2 shared cores, load average 30 to 40 from
// other work): 4 processes × 16 goroutines through one redis-server, ε = 5%, windows of
// 1s. On one key limited to 20,000 per second, the most any window admitted was 20,000
// (bound: 20,000) for both algorithms, the windows wholly inside the run filled to 100%
// (fixed window) and 98.3% (sliding window counter), with 0.0005 and 0.0011 scripts per
// decision. On 1,000 keys limited to 100 per second, the most was 100 and 98 (bound: 100),
// the mean fill 98.6% and 92.2%. With Redis killed and restarted mid-run the most was
// 20,000 (bound: 40,000 in the window of the restart, 20,000 in the others); hung by
// SIGSTOP for 3s, 20,000, the two windows of the hang admitting only the leases in hand;
// with one process killed, 20,000. Of 2.0 million decisions in those runs, 81 took over a
// millisecond, all of them from the scheduler of the loaded machine: no decision waits
// on Redis. N stores at L = 1,000 and 100,000 per second, N = 2 and 4, ε = 1% and 5%
// admitted exactly L in every window (over-admission 0), and at L = 100,000, N = 4,
// ε = 5% sent one script per 5,000 decisions where the strict store sends one per
// decision.
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
