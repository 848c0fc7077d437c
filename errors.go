package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with [errors.Is]; the errors returned wrap them with details.
var (
	// ErrInvalidLimit reports a Limit with Rate ≤ 0, Period ≤ 0, Burst < 0, or a capacity
	// that would take longer than about 146 years to refill. [New] does not fail; the first
	// call with such a limit returns it.
	ErrInvalidLimit = errors.New("ratelimit: invalid limit")

	// ErrInvalidCost reports a cost n < 0, or an n above the capacity: such a request could
	// never pass, so it is an error rather than a denial with a misleading RetryAfter.
	ErrInvalidCost = errors.New("ratelimit: invalid cost")

	// ErrInvalidAlgorithm reports an Algorithm value outside the six defined ones.
	ErrInvalidAlgorithm = errors.New("ratelimit: invalid algorithm")

	// ErrInvalidKey reports an empty key, or one longer than [MaxKeyLen] bytes. An empty key
	// is almost always a key function that found nothing; pooling all such requests into one
	// bucket would be a silent bug, so stores refuse it.
	ErrInvalidKey = errors.New("ratelimit: invalid key")

	// ErrClosed is returned by a Store that has been closed.
	ErrClosed = errors.New("ratelimit: store closed")

	// ErrCircuitOpen is what a store backed by a server or a database reports, wrapped, for
	// calls answered by its [FailPolicy] without trying the backend because its circuit
	// breaker is open; under [FailError] the call returns it.
	ErrCircuitOpen = errors.New("ratelimit: circuit open")

	// ErrLimited is matched by the *LimitedError that [Limiter.Do] and [Wrap] return when
	// the limiter denies the call. Being limited is otherwise a Result, never an error.
	ErrLimited = errors.New("ratelimit: rate limited")
)

// LimitedError is the error [Limiter.Do] and [Wrap] return when the limiter denies a call.
// It matches [ErrLimited] with [errors.Is] and carries the denial's [Result], so callers can
// read RetryAfter:
//
//	var le *ratelimit.LimitedError
//	if errors.As(err, &le) {
//		time.Sleep(le.Result.RetryAfter)
//	}
type LimitedError struct {
	Key    string // the key that was limited
	Result Result // the denial: Allowed is false, RetryAfter says how long to wait
}

// Error reports the key and how long to wait.
func (e *LimitedError) Error() string {
	return fmt.Sprintf("ratelimit: rate limited: key %q: retry after %v", e.Key, e.Result.RetryAfter.Round(time.Microsecond))
}

// Is reports whether target is [ErrLimited].
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }
