package algo

// The three bucket algorithms make the same decisions for the same Rate and capacity: each
// keeps, in its own form, how much of the capacity is in use. They share one decision on
// that amount, used, measured in unit·nanoseconds (units × Period): used/Rate is the time
// until the key is back to full capacity, and used/Period is the units in use.

// decide allows n if used + n·Period ≤ Cap·Period. It returns the amount in use after the
// step; used must not exceed Cap·Period.
func decide(used u128, p Params, n uint64) (u128, Decision) {
	capacity := mul(p.Cap, p.Period)
	after := used.add(mul(n, p.Period))
	var d Decision
	if !capacity.less(after) {
		d.Allowed = true
		used = after
	} else {
		d.RetryAfter = int64(after.sub(capacity).divCeil(p.Rate))
	}
	d.Remaining, _ = capacity.sub(used).div(p.Period)
	d.ResetAfter = int64(used.divCeil(p.Rate))
	return used, d
}

// amount reads whole + frac/Period as unit·nanoseconds, clamped to the capacity.
func amount(whole, frac uint64, p Params) u128 {
	if whole >= p.Cap {
		return mul(p.Cap, p.Period)
	}
	return mul(whole, p.Period).addSmall(min(frac, p.Period-1))
}

// split is the inverse of amount.
func split(a u128, p Params) (whole, frac uint64) { return a.div(p.Period) }

// tokenBucket starts full with Cap tokens and refills continuously at Rate per Period;
// it allows n if tokens ≥ n.
func tokenBucket(s State, now int64, p Params, n uint64) (State, Decision) {
	now = max(now, s.At)
	capacity := mul(p.Cap, p.Period)
	refill := mul(uint64(now-s.At), p.Rate)
	used := capacity.sub(amount(s.X, s.Y, p)).sub(refill)
	used, d := decide(used, p, n)
	if d.Allowed && n > 0 {
		whole, frac := split(capacity.sub(used), p)
		s = State{At: now, X: whole, Y: frac}
	}
	return s, d
}

// leakyBucket is a meter: its level starts at 0 and drains at Rate per Period; it allows n
// if level + n ≤ Cap.
func leakyBucket(s State, now int64, p Params, n uint64) (State, Decision) {
	now = max(now, s.At)
	drained := mul(uint64(now-s.At), p.Rate)
	used := amount(s.X, s.Y, p).sub(drained)
	used, d := decide(used, p, n)
	if d.Allowed && n > 0 {
		whole, frac := split(used, p)
		s = State{At: now, X: whole, Y: frac}
	}
	return s, d
}

// gcra keeps the theoretical arrival time TAT = At + X/Rate nanoseconds. It allows n if
// max(TAT, now) + n·T − Cap·T ≤ now, then sets TAT = max(TAT, now) + n·T, with
// T = Period/Rate. An earlier now only makes it stricter, so it needs no clamp.
func gcra(s State, now int64, p Params, n uint64) (State, Decision) {
	var used u128 // (TAT − now)·Rate, clamped to the capacity
	if s.At > now || s.At == now && s.X > 0 {
		used = mul(uint64(s.At-now), p.Rate).addSmall(min(s.X, p.Rate-1))
		if capacity := mul(p.Cap, p.Period); capacity.less(used) {
			used = capacity
		}
	}
	used, d := decide(used, p, n)
	if d.Allowed && n > 0 {
		q, r := used.div(p.Rate)
		s = State{At: now + int64(q), X: r}
	}
	return s, d
}
