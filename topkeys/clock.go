package topkeys

import (
	"math"
	"sync/atomic"
	"time"
	"weak"
)

// clock is the number of the current step, read by Observe without a clock call: a timer
// advances it at each step boundary. The timer holds the Collector only weakly, and stops
// once the Collector is garbage.
type clock struct {
	step     int64     // nanoseconds per step
	base     time.Time // when New ran, with its monotonic reading
	baseUnix int64     // base in Unix nanoseconds
	current  atomic.Int64
}

// start sets the current step and arms the timer of the next boundary.
func (c *Collector) startClock() {
	c.clock.current.Store(c.clock.read())
	self := weak.Make(c)
	var t *time.Timer
	t = time.AfterFunc(math.MaxInt64, func() {
		c := self.Value()
		if c == nil {
			return // the Collector is gone: so is its clock
		}
		c.clock.current.Store(c.clock.read())
		t.Reset(c.clock.untilNext())
	})
	t.Reset(c.clock.untilNext())
}

// now returns the number of the current step.
func (k *clock) now() int64 { return k.current.Load() }

// read returns the number of the current step from the clock. It reads the monotonic
// clock only, so steps keep their length when the wall clock jumps.
func (k *clock) read() int64 {
	return k.nanos() / k.step
}

// nanos returns the Unix time in nanoseconds, as the monotonic clock measures it since New.
func (k *clock) nanos() int64 { return k.baseUnix + int64(time.Since(k.base)) }

// untilNext returns the time to the next step boundary.
func (k *clock) untilNext() time.Duration {
	n := k.nanos()
	return time.Duration(k.step - n%k.step)
}
