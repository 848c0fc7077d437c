// Package ratelimit limits how often keyed events may happen, in one process or across a
// fleet sharing Redis.
//
// A [Limiter] applies one [Algorithm] and one [Limit] to any number of keys held in a
// [Store]: the in-memory store (package memorystore) is the embedded default; the Redis
// store shares state between processes with the same decisions.
//
//	store := memorystore.New(nil)
//	defer store.Close()
//	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(10))
//	r, err := lim.Allow(ctx, "user:42")
//	if err != nil { ... }   // invalid arguments, a failed store, an ended context
//	if !r.Allowed { ... }   // limited: r.RetryAfter says how long to wait
//
// Being limited is a [Result], never an error. [Limiter.Wait] blocks until the units pass;
// [Limiter.Do] and [Wrap] run a function only if it is allowed.
//
// # Algorithms
//
// Let cap be the capacity ([Limit.Capacity]): Burst for the bucket algorithms (Rate when
// Burst is 0), Rate for the window algorithms, which ignore Burst. Let T = Period/Rate,
// computed exactly, never rounded to whole nanoseconds.
//
//   - [FixedWindow] counts units in windows [k·Period, (k+1)·Period) aligned to the Unix
//     epoch and allows n if count + n ≤ Rate. Cheapest, but up to 2·Rate can pass across a
//     window boundary: Rate at its end and Rate again at the start of the next.
//   - [SlidingWindowLog] remembers each unit for one Period and allows n if the units in
//     (now − Period, now] plus n are at most Rate. Exact; memory grows with Rate.
//   - [SlidingWindowCounter] keeps the counts of the current and previous epoch-aligned
//     windows and allows n if prev·(1 − elapsed/Period) + curr + n ≤ Rate, where elapsed is
//     the time since the current window began. O(1) memory; never more than Rate in an
//     aligned window, and at most 2·Rate in any window of length Period. The approximation
//     has a price: at 1 per second, a unit at t = 0 makes the next wait until t = 2 s.
//   - [TokenBucket] starts full with cap tokens that refill continuously at Rate per Period;
//     it allows n if n tokens are there.
//   - [LeakyBucket] is a meter: a level that starts at 0, drains at Rate per Period, and may
//     not exceed cap. With Burst 1 and [Limiter.Wait], requests leave exactly T apart.
//   - [GCRA] keeps one instant, the theoretical arrival time TAT, and allows n if
//     max(TAT, now) + n·T − cap·T ≤ now, then sets TAT = max(TAT, now) + n·T.
//
// TokenBucket, LeakyBucket and GCRA make the same decisions for the same Rate and Burst; they
// differ in the state they keep and in how people think about them. Over any span d, they
// let at most cap + Rate·d/Period units pass.
//
// # Semantics shared by all algorithms and stores
//
//   - n == 0 reports without taking: it is allowed unless the key is over a limit that was
//     lowered since. n < 0, and n above the capacity (it could never pass), are errors
//     wrapping [ErrInvalidCost].
//   - A denied call changes no state. [Result.Remaining] is then what is available now.
//   - [Result.RetryAfter] is the minimal wait, with no other traffic, after which the same
//     n can pass; [Result.ResetAfter] is the time until the key is back to full capacity.
//     Both are exact up to 1 ns of rounding up (1 µs on Redis, whose clock is in µs).
//   - State is kept per (key, algorithm). A changed limit ([Limiter.SetLimit]) applies to the
//     existing state: TokenBucket keeps its tokens up to the new capacity, LeakyBucket
//     clamps its level to it, and GCRA reads its TAT as it is, so a key deeper in debt than
//     a lowered Burst allows is over the limit and denies, even n == 0, until it drains;
//     window counts above a lowered Rate deny until they age out. A store may forget a key once it is back to full
//     capacity under the limit it was last charged with, so a limit raised or slowed after
//     that finds the key full.
//   - Calls may reach a store with out-of-order instants (clocks read before a lock, or on
//     different machines): an instant earlier than the key's last update counts as that
//     update's instant, so no algorithm over-grants.
package ratelimit
