// Package adaptive holds limits that move with the load they observe: [Rate], a rate
// limit that tightens when the server struggles and relaxes when it recovers, and
// [Throttle], client-side adaptive throttling that stops a client from hammering a
// backend that is rejecting it.
//
// The concurrency limiter, whose limit finds the server's capacity, is in package
// concurrency; [ConcurrencyLoad] turns it into a load signal for a Rate.
package adaptive
