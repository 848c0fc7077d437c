// Package concurrency limits the requests a server works on at once, with a limit that
// finds the server's capacity by itself.
//
// A rate limit protects fairness between clients; it cannot protect a server whose
// capacity changes: a slow database, a deploy, a noisy neighbour. The number of requests
// in flight can. By Little's law in-flight = throughput × latency: below the server's
// capacity more concurrency brings more throughput at the same latency; beyond it, it
// only brings queueing, which shows as rising latency and, later, as timeouts. A
// [Limiter] admits a request with [Limiter.Acquire] while fewer than its limit are in
// flight, and the [Token] it returns records, on [Token.Release], how long the request
// took and whether it succeeded. Once per sample window the limit's [Algorithm] reads
// those measurements and moves the limit:
//
//   - [Fixed]: a constant limit, a bulkhead.
//   - [AIMD]: additive increase while requests succeed, multiplicative decrease on a drop
//     or a latency above a timeout: TCP Reno's rule, for services with a known latency
//     budget.
//   - [Gradient2]: the ratio of the long-term to the short-term latency scales the
//     limit, with a tolerance for latency growth and a queue allowance for probing.
//   - [Vegas]: the queue the server holds is estimated as limit × (1 − no-load latency /
//     latency); the limit grows while that queue is short and shrinks when it is long, as
//     TCP Vegas does with its congestion window. The default.
//
// A Limiter can keep a bounded queue of waiting callers ([Options.MaxQueue]), served
// newest first, and can share its limit between named partitions with guaranteed shares
// ([Options.Partitions]).
//
// # Sample windows and time constants
//
// Measurements are aggregated into windows: a window closes at the first Release at
// least [Options.Window] (default 100 ms) or twice the smallest latency of the previous
// window, whichever is longer, after it opened, provided it holds at least
// [Options.MinSamples] (default 10) releases; a window with fewer samples stays open, so
// a quiet limiter does not move. The limit is recomputed once per window, never per call:
// Acquire and Release cost a few atomic operations and allocate nothing.
//
// # Safety
//
// A Limiter is safe for concurrent use. Algorithms are called from one goroutine at a
// time, under the Limiter's lock, and keep their state between calls: give each Limiter
// its own.
package concurrency
