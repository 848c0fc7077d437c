package ratelimit

import "time"

// Result is the outcome of one decision. It is returned by value.
//
// For example, with TokenBucket and Limit{Rate: 10, Period: time.Second, Burst: 5}, the
// first call with n = 3 on a fresh key returns
//
//	Result{Allowed: true, Limit: {10, 1s, 5}, Remaining: 2, RetryAfter: 0, ResetAfter: 300ms}
//
// and an immediate second call with n = 3 returns
//
//	Result{Allowed: false, Limit: {10, 1s, 5}, Remaining: 2, RetryAfter: 100ms, ResetAfter: 300ms}
type Result struct {
	// Allowed reports whether the n units were taken.
	Allowed bool

	// Limit is the effective limit: the one asked for, with Burst filled in (the capacity:
	// Burst, or Rate when Burst is 0 or the algorithm is a window algorithm).
	Limit Limit

	// Remaining is the whole number of units available after this call. On a denial it is
	// what is available now: a denied n = 2 with 1 unit left reports 1.
	Remaining int

	// RetryAfter is, on a denial, the minimal wait after which the same n can pass if no
	// other traffic arrives. It is 0 when Allowed is true.
	RetryAfter time.Duration

	// ResetAfter is the time until the key is back to full capacity, 0 when nothing is in use.
	ResetAfter time.Duration
}
