package redistest

import "time"

// WindowOf returns the range [lo, hi] of epoch-aligned windows of length period (indexed
// start/period) that can hold the instant at which a call admitted units, from the
// instants before and after the call and the ResetAfter it returned, for a store whose
// ResetAfter ends at or before the end of the window the units count in (a lease never
// outlives its window). The call decided at some instant d in [before, after], in the
// window holding d, and d + resetAfter is at most that window's end. lo == hi is the usual
// case: before and after in one window, or resetAfter telling which side of the boundary
// d was on.
func WindowOf(before, after time.Time, resetAfter, period time.Duration) (lo, hi int64) {
	p := int64(period)
	b, a, r := before.UnixNano(), after.UnixNano(), int64(resetAfter)
	lo, hi = b/p, a/p
	// Windows whose end is below d + resetAfter cannot hold d: d ≥ before.
	for lo < hi && b+r > (lo+1)*p {
		lo++
	}
	// A window w holds d only if d ≥ w·p, and then d + resetAfter ≤ (w+1)·p; since
	// d ≤ after, w·p ≤ after, and a window below hi holds d only if d < hi·p.
	for hi > lo && a+r <= hi*p {
		hi--
	}
	return lo, hi
}
