package algo

// The three bucket algorithms make the same decisions for the same Rate and capacity: each
// keeps, in its own form, how much of the capacity is in use. They share one decision on
// that amount, used, measured in unit·nanoseconds (units × Period): used/Rate is the time
// until the key is back to full capacity, and used/Period is the units in use.

// bucketStep is the outcome of decide: the amount in use afterwards, and the quotients the
// callers need, computed once (128-bit divisions dominate the cost of a step).
type bucketStep struct {
	used          u128   // unit·nanoseconds in use after the step
	free, freeRem uint64 // (Cap·Period − used) / Period: whole units free, and the remainder
	drain, drainR uint64 // used / Rate: nanoseconds until empty, and the remainder
}

// decide allows n if used + n·Period ≤ Cap·Period. used may exceed Cap·Period only for
// GCRA after its limit was lowered; it must not exceed Cap·Period + 2^62·Rate.
func decide(used u128, p *Params, n uint64, d *Decision) bucketStep {
	capacity := mul(p.Cap, p.Period)
	after := used.add(mul(n, p.Period))
	*d = Decision{}
	if !capacity.less(after) {
		d.Allowed = true
		used = after
	} else {
		d.RetryAfter = int64(after.sub(capacity).divCeil(p.Rate))
	}
	st := bucketStep{used: used}
	st.free, st.freeRem = capacity.sub(used).div(p.Period)
	st.drain, st.drainR = used.div(p.Rate)
	d.Remaining = st.free
	d.ResetAfter = int64(st.drain)
	if st.drainR != 0 {
		d.ResetAfter++
	}
	return st
}

// amount reads whole + frac/Period as unit·nanoseconds, clamped to the capacity.
func amount(whole, frac uint64, p *Params) u128 {
	if whole >= p.Cap {
		return mul(p.Cap, p.Period)
	}
	return mul(whole, p.Period).addSmall(min(frac, p.Period-1))
}

// tokenBucket starts full with Cap tokens and refills continuously at Rate per Period;
// it allows n if tokens ≥ n.
func tokenBucket(s *State, now int64, p *Params, n uint64, d *Decision) {
	now = max(now, s.At)
	if p.whole() {
		if y, ok := p.backlog(s.Y); ok {
			// In use: Cap·T − (X·T + y) − elapsed, clamped as amount does.
			var have uint64 = p.Cap * p.T
			if s.X < p.Cap {
				have = s.X*p.T + y
			}
			w := sat(sat(p.Cap*p.T, have), uint64(now-s.At))
			free, rem := decideWhole(w, p, n, d)
			if d.Allowed && n > 0 {
				*s = State{At: now, X: free, Y: rem * p.Rate}
			}
			return
		}
	}
	capacity := mul(p.Cap, p.Period)
	refill := mul(uint64(now-s.At), p.Rate)
	used := capacity.sub(amount(s.X, s.Y, p)).sub(refill)
	st := decide(used, p, n, d)
	if d.Allowed && n > 0 {
		*s = State{At: now, X: st.free, Y: st.freeRem}
	}
}

// leakyBucket is a meter: its level starts at 0 and drains at Rate per Period; it allows n
// if level + n ≤ Cap.
func leakyBucket(s *State, now int64, p *Params, n uint64, d *Decision) {
	now = max(now, s.At)
	if p.whole() {
		if y, ok := p.backlog(s.Y); ok {
			// In use: X·T + y − elapsed, clamped as amount does.
			var level uint64 = p.Cap * p.T
			if s.X < p.Cap {
				level = s.X*p.T + y
			}
			w := sat(level, uint64(now-s.At))
			decideWhole(w, p, n, d)
			if d.Allowed && n > 0 {
				used := uint64(d.ResetAfter)
				*s = State{At: now, X: used / p.T, Y: used % p.T * p.Rate}
			}
			return
		}
	}
	drained := mul(uint64(now-s.At), p.Rate)
	used := amount(s.X, s.Y, p).sub(drained)
	st := decide(used, p, n, d)
	if d.Allowed && n > 0 {
		whole, frac := st.used.div(p.Period)
		*s = State{At: now, X: whole, Y: frac}
	}
}

// gcra keeps the theoretical arrival time TAT = At + X/Rate nanoseconds. It allows n if
// max(TAT, now) + n·T − Cap·T ≤ now, then sets TAT = max(TAT, now) + n·T, with
// T = Period/Rate. An earlier now only makes it stricter, so it needs no clamp. After a
// limit change TAT is read as it is: a key whose TAT lies further ahead than the new
// capacity allows is over the lowered limit, and denies even n == 0 until it drains.
func gcra(s *State, now int64, p *Params, n uint64, d *Decision) {
	if p.T == 0 || s.X != 0 {
		gcraExact(s, now, p, n, d)
		return
	}
	// When T = Period/Rate is a whole number of nanoseconds and the TAT has no fraction, as
	// every TAT written under such a limit, the amount in use, (TAT − now)·Rate
	// unit·nanoseconds, is w·Rate for a backlog of w whole nanoseconds, and every quotient
	// of decide by Rate is exact: decideWhole decides in w with one 64-bit division.
	// Validate bounds Cap·T by 2^62 and a TAT lies at most Cap·T (under the largest limit
	// in range) past the instant it was written, so w + n·T fits in 64 bits.
	var w uint64 // TAT − now, when the TAT is ahead
	if s.At > now {
		w = uint64(s.At - now)
	}
	decideWhole(w, p, n, d)
	if d.Allowed && n > 0 {
		*s = State{At: now + d.ResetAfter}
	}
}

// decideWhole is decide for a limit whose T = Period/Rate is a whole number of
// nanoseconds, on an amount in use of w·Rate unit·nanoseconds: a backlog of w whole
// nanoseconds, at most Cap·T + 2^62. Every quotient of decide by Rate is then exact, and
// the one by Period is a quotient by T. It allows n if w + n·T ≤ Cap·T, and returns the
// whole units free after the step and the remainder, in nanoseconds (decide's free and
// freeRem/Rate); the backlog after the step is d.ResetAfter. Validate bounds Cap·T by
// 2^62, so every sum here fits in 64 bits.
func decideWhole(w uint64, p *Params, n uint64, d *Decision) (free, rem uint64) {
	full := p.Cap * p.T // the backlog of a key at capacity
	after := w + n*p.T
	*d = Decision{}
	if after <= full {
		d.Allowed = true
		w = after
	} else {
		d.RetryAfter = int64(after - full)
	}
	if w < full {
		free, rem = (full-w)/p.T, (full-w)%p.T
	}
	d.Remaining = free
	d.ResetAfter = int64(w)
	return free, rem
}

// gcraExact is gcra in unit·nanoseconds, for any limit and any fraction.
func gcraExact(s *State, now int64, p *Params, n uint64, d *Decision) {
	var used u128 // (TAT − now)·Rate
	if s.At > now || s.At == now && s.X > 0 {
		used = mul(uint64(s.At-now), p.Rate).addSmall(min(s.X, p.Rate-1))
	}
	st := decide(used, p, n, d)
	if d.Allowed && n > 0 {
		*s = State{At: now + int64(st.drain), X: st.drainR}
	}
}
