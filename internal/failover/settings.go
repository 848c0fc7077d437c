package failover

import (
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Settings are the failure options the SQL stores offer their users, embedded in their
// Options as Failure: how a call is bounded, when the circuit breaker opens, and how calls
// are answered while the database fails. Every zero field means the default.
type Settings struct {
	// Timeout bounds each call to the database, lock waits included, in addition to the
	// caller's context. A call that takes longer is a failure answered by Policy.
	// Default 100ms.
	Timeout time.Duration

	// BreakerThreshold is the number of consecutive failed calls after which the circuit
	// breaker opens: calls are then answered by Policy at once, without trying the
	// database. Default 5; a negative value disables the breaker.
	BreakerThreshold int

	// BreakerCooldown is how long the breaker stays open; then one call probes the
	// database while the others are answered by Policy. Default 1s.
	BreakerCooldown time.Duration

	// Policy says how calls are answered while the database fails (unreachable, locked
	// past Timeout, full). Default [ratelimit.FailLocal].
	Policy ratelimit.FailPolicy

	// Local is the store FailLocal answers from. Default: a memorystore.Store created with
	// the store and closed by its Close; a Local given here is the caller's.
	Local ratelimit.Store

	// OnError, when set, is called with every failure of the database, synchronously in the
	// caller's goroutine; calls answered while the breaker is open pass an error wrapping
	// [ratelimit.ErrCircuitOpen]. Default nil. The store's Stats count the same events.
	OnError func(error)
}

// Guard returns a Guard configured by s, with unavailable as [Options.Unavailable].
func (s Settings) Guard(unavailable func(error) bool) *Guard {
	return New(Options{
		Policy:           s.Policy,
		Timeout:          s.Timeout,
		BreakerThreshold: s.BreakerThreshold,
		BreakerCooldown:  s.BreakerCooldown,
		Local:            s.Local,
		OnError:          s.OnError,
		Unavailable:      unavailable,
	})
}
