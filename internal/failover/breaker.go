package failover

import (
	"sync/atomic"
	"time"
)

// breaker is a circuit breaker over the calls to a backend. Closed, it lets every call through
// and counts consecutive failures; at the threshold it opens for a cool-down, during which
// calls are answered by policy without trying the backend; after the cool-down it lets exactly
// one call through as a probe, whose outcome closes it or opens it again. It is lock-free:
// a decision while open costs a clock read and two atomic loads.
type breaker struct {
	threshold int64 // ≤ 0: never opens
	cooldown  int64 // nanoseconds
	failures  atomic.Int64
	openUntil atomic.Int64 // Unix nanoseconds; 0 when closed
	probing   atomic.Bool  // a probe is in flight
}

func (b *breaker) init(threshold int, cooldown time.Duration) {
	b.threshold, b.cooldown = int64(threshold), int64(cooldown)
}

// allow reports whether a call may go to the backend, and whether it is the probe.
func (b *breaker) allow(now time.Time) (probe, ok bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return false, true
	}
	if now.UnixNano() < until {
		return false, false
	}
	if b.probing.CompareAndSwap(false, true) {
		return true, true
	}
	return false, false
}

// success records a call that the backend answered: the breaker closes.
func (b *breaker) success(probe bool) {
	b.failures.Store(0)
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
	}
	if probe {
		b.probing.Store(false)
	}
}

// failure records a failed call and reports whether it opened the breaker.
func (b *breaker) failure(probe bool, now time.Time) (opened bool) {
	if b.threshold <= 0 {
		return false
	}
	if probe {
		b.openUntil.Store(now.UnixNano() + b.cooldown)
		b.probing.Store(false)
		return true
	}
	if b.failures.Add(1) >= b.threshold {
		return b.openUntil.CompareAndSwap(0, now.UnixNano()+b.cooldown)
	}
	return false
}

// release ends a call that gave no verdict on the backend (the caller's context ended).
func (b *breaker) release(probe bool) {
	if probe {
		b.probing.Store(false)
	}
}

func (b *breaker) isOpen(now time.Time) bool {
	until := b.openUntil.Load()
	return until != 0 && (now.UnixNano() < until || b.probing.Load())
}

// untilProbe returns the time until the breaker lets a probe through, 0 when closed.
func (b *breaker) untilProbe(now time.Time) time.Duration {
	until := b.openUntil.Load()
	if until == 0 {
		return 0
	}
	return max(0, time.Duration(until-now.UnixNano()))
}
