// Package algo holds the six rate-limiting algorithms as pure step functions: state, the
// current instant, the limit and a cost in; the next state and a decision out. No I/O, no
// locks, no clock. Every store runs these (or, for Redis, scripts tested against them).
//
// All arithmetic is on integers: instants and durations in nanoseconds, and the bucket
// algorithms in unit·nanoseconds with 128-bit intermediates, so the emission interval
// T = Period/Rate is never rounded. Durations in a Decision are rounded up to whole
// nanoseconds.
package algo

import (
	"fmt"
	"math"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Params is a validated limit in the integers the algorithms compute with.
type Params struct {
	Rate   uint64 // units per Period, > 0
	Period uint64 // nanoseconds, > 0
	Cap    uint64 // capacity: Burst or Rate for buckets, Rate for windows; > 0

	// T is the emission interval Period/Rate in nanoseconds when Rate divides Period and
	// the algorithm is a bucket, and 0 otherwise (or when unknown). The bucket algorithms
	// then decide in whole nanoseconds; the results are the same either way.
	T uint64
}

// whole reports whether the bucket algorithms may decide in whole nanoseconds.
func (p *Params) whole() bool { return p.T != 0 }

// backlog reads a fraction f of a unit, in 1/Period, as whole nanoseconds f/Rate, and
// reports false when f is not such a multiple of Rate (state written under another limit).
// (Dividing by a multiplicative inverse of Rate instead made Params two words larger,
// which cost more on every call than this division saves.)
func (p *Params) backlog(f uint64) (uint64, bool) {
	y := f / p.Rate
	return y, y < p.T && y*p.Rate == f
}

// NewParams validates alg and l and converts them.
func NewParams(alg ratelimit.Algorithm, l ratelimit.Limit) (Params, error) {
	if !alg.Valid() {
		return Params{}, fmt.Errorf("%w: %v", ratelimit.ErrInvalidAlgorithm, alg)
	}
	if err := l.Validate(); err != nil {
		return Params{}, err
	}
	p := Params{Rate: uint64(l.Rate), Period: uint64(l.Period), Cap: uint64(l.Capacity(alg))}
	if (alg == ratelimit.TokenBucket || alg == ratelimit.LeakyBucket || alg == ratelimit.GCRA) && p.Period%p.Rate == 0 {
		p.T = p.Period / p.Rate
	}
	return p, nil
}

// Cost validates n under p and returns it as a uint64.
func (p Params) Cost(n int) (uint64, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: n %d is negative", ratelimit.ErrInvalidCost, n)
	case uint64(n) > p.Cap:
		return 0, fmt.Errorf("%w: n %d exceeds the capacity %d, so it could never pass", ratelimit.ErrInvalidCost, n, p.Cap)
	}
	return uint64(n), nil
}

// Limit returns the effective limit: p with Burst filled in.
func (p Params) Limit() ratelimit.Limit {
	return ratelimit.Limit{Rate: int(p.Rate), Period: time.Duration(p.Period), Burst: int(p.Cap)}
}

// Decision is the outcome of one step, in the algorithms' integers.
type Decision struct {
	Allowed    bool
	Remaining  uint64 // whole units available after the step
	RetryAfter int64  // nanoseconds; 0 when allowed
	ResetAfter int64  // nanoseconds until full capacity; 0 when nothing is in use
}

// Result converts d to the public form.
func (d Decision) Result(p Params) ratelimit.Result {
	return ratelimit.Result{
		Allowed:    d.Allowed,
		Limit:      p.Limit(),
		Remaining:  int(min(d.Remaining, math.MaxInt)),
		RetryAfter: time.Duration(d.RetryAfter),
		ResetAfter: time.Duration(d.ResetAfter),
	}
}

// State is the fixed-size state of one key under any algorithm except SlidingWindowLog,
// which keeps a [Log]. Its fields mean, per algorithm:
//
//	FixedWindow           At: window start   X: units taken in it
//	SlidingWindowCounter  At: window start   X: units taken in it   Y: units taken in the window before
//	TokenBucket           At: last update    X: whole tokens        Y: fraction of a token, in 1/Period
//	LeakyBucket           At: last update    X: whole level         Y: fraction of a unit, in 1/Period
//	GCRA                  At: TAT, whole ns  X: fraction of a nanosecond, in 1/Rate
//
// Fractions are read clamped to their denominator, so state written under another limit
// (after a limit change) is read with an error below one unit, or one nanosecond for GCRA.
type State struct {
	At   int64
	X, Y uint64
}

// Init returns the state of a key never seen before at instant now: an empty window, a full
// token bucket, an empty leaky bucket, a TAT of now.
func Init(alg ratelimit.Algorithm, p Params, now int64) State {
	switch alg {
	case ratelimit.TokenBucket:
		return State{At: now, X: p.Cap}
	case ratelimit.LeakyBucket, ratelimit.GCRA:
		return State{At: now}
	}
	return State{}
}

// Take is one step of alg, which must not be SlidingWindowLog: it decides whether n units
// can pass at instant now given state s, and returns the state to keep. A denial or n == 0
// returns s unchanged. An instant earlier than the state's last update is treated as that
// update's instant, so out-of-order calls never over-grant.
func Take(alg ratelimit.Algorithm, s State, now int64, p Params, n uint64) (State, Decision) {
	var d Decision
	Step(alg, &s, now, &p, n, &d)
	return s, d
}

// Step is [Take] in place, for stores that keep states in memory: it changes *s only when
// the units are taken, and writes the decision to *d.
func Step(alg ratelimit.Algorithm, s *State, now int64, p *Params, n uint64, d *Decision) {
	switch alg {
	case ratelimit.FixedWindow:
		*s, *d = fixedWindow(*s, now, *p, n)
	case ratelimit.SlidingWindowCounter:
		*s, *d = slidingWindowCounter(*s, now, *p, n)
	case ratelimit.TokenBucket:
		tokenBucket(s, now, p, n, d)
	case ratelimit.LeakyBucket:
		leakyBucket(s, now, p, n, d)
	case ratelimit.GCRA:
		gcra(s, now, p, n, d)
	default:
		panic(fmt.Sprintf("algo: Step called with %v", alg)) // a programming error in a store
	}
}

// sat returns a − b, or 0 when b > a.
func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
