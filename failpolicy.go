package ratelimit

import "fmt"

// FailPolicy says how a Store backed by a server or a database (Redis, SQLite, PostgreSQL)
// answers while that backend cannot decide: after a call that failed or timed out, and while
// the store's circuit breaker is open. The zero value is [FailLocal].
//
// A policy answer carries a nil error, so that [Limiter.Wait], [Limiter.Do] and middleware
// keep working; the stores report each failure through a hook and count it (see their
// Options). Errors that are not about availability, such as invalid arguments, are returned
// whatever the policy.
type FailPolicy uint8

const (
	// FailLocal answers from an in-memory store with the same algorithm and limit. Every
	// process then enforces the whole limit on its own, so a fleet of k processes admits up
	// to k times the limit while the backend is down: the service stays up and abusers are
	// still slowed. The local state starts empty and is not merged back when the backend
	// returns.
	FailLocal FailPolicy = iota

	// FailOpen allows every call: Allowed true, Remaining the capacity minus n, RetryAfter
	// and ResetAfter 0. Nothing is limited while the backend is down.
	FailOpen

	// FailClosed denies every call: Allowed false, Remaining 0, RetryAfter the time until
	// the store next tries its backend (at least its per-call timeout), so waiters do not
	// spin. Nothing passes while the backend is down.
	FailClosed

	// FailError returns the failure as an error wrapping the backend's error (or
	// [ErrCircuitOpen]) and a zero Result, for callers that decide themselves, such as a
	// service that lets its client apply a failure mode.
	FailError
)

// String returns "local", "open", "closed" or "error", the words [ParseFailPolicy] reads.
func (p FailPolicy) String() string {
	switch p {
	case FailLocal:
		return "local"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	case FailError:
		return "error"
	}
	return fmt.Sprintf("FailPolicy(%d)", uint8(p))
}

// ParseFailPolicy returns the policy named "local", "open", "closed" or "error" (exactly
// these words, as [FailPolicy.String] writes them).
func ParseFailPolicy(s string) (FailPolicy, error) {
	for p := FailLocal; p <= FailError; p++ {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("ratelimit: fail policy %q: want local, open, closed or error", s)
}
