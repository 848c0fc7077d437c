package algo

// windowStart returns the start of the epoch-aligned window of length period holding now.
func windowStart(now int64, period uint64) int64 {
	r := now % int64(period)
	if r < 0 {
		r += int64(period)
	}
	return now - r
}

// fixedWindow allows n if count + n ≤ Rate in the window [k·Period, (k+1)·Period) holding now.
func fixedWindow(s State, now int64, p Params, n uint64) (State, Decision) {
	now = max(now, s.At)
	start := windowStart(now, p.Period)
	end := start + int64(p.Period)
	count := s.X
	if start != s.At {
		count = 0
	}
	var d Decision
	if count+n <= p.Rate {
		d.Allowed = true
		if n > 0 {
			count += n
			s = State{At: start, X: count}
		}
	} else {
		d.RetryAfter = end - now // n ≤ Rate, so it passes in the next window
	}
	d.Remaining = sat(p.Rate, count)
	if count > 0 {
		d.ResetAfter = end - now
	}
	return s, d
}

// slidingWindowCounter allows n if prev·(1 − elapsed/Period) + curr + n ≤ Rate, where curr
// counts the current epoch-aligned window, prev the one before, and elapsed is the time
// since the current window began. Multiplied through by Period it is exact in integers:
// prev·(Period − elapsed) + (curr + n)·Period ≤ Rate·Period.
func slidingWindowCounter(s State, now int64, p Params, n uint64) (State, Decision) {
	now = max(now, s.At)
	start := windowStart(now, p.Period)
	end := start + int64(p.Period)
	curr, prev := s.X, s.Y
	switch start {
	case s.At:
	case s.At + int64(p.Period):
		prev, curr = curr, 0
	default:
		prev, curr = 0, 0
	}
	elapsed := uint64(now - start)
	weight := mul(prev, p.Period-elapsed) // prev's share of the estimate, times Period

	var d Decision
	if curr+n <= p.Rate && !mul(p.Rate-curr-n, p.Period).less(weight) {
		d.Allowed = true
		if n > 0 {
			curr += n
			s = State{At: start, X: curr, Y: prev}
		}
	} else {
		d.RetryAfter = counterRetry(curr, prev, elapsed, p, n)
	}
	// Remaining = ⌊Rate − curr − weight/Period⌋.
	d.Remaining = sat(sat(p.Rate, curr), weight.divCeil(p.Period))
	switch {
	case curr > 0:
		d.ResetAfter = end + int64(p.Period) - now
	case prev > 0:
		d.ResetAfter = end - now
	}
	return s, d
}

// counterRetry returns the least wait after which a denied n passes the sliding window
// counter, with no other traffic: the first integer elapsed e' at which
// prev·(Period − e') ≤ (Rate − curr − n)·Period, in this window or the next.
func counterRetry(curr, prev, elapsed uint64, p Params, n uint64) int64 {
	if curr+n <= p.Rate {
		// Denied only by prev's weight, so prev > 0 and (Rate−curr−n)·Period/prev is
		// below Period − elapsed: the quotient fits.
		q, _ := mul(p.Rate-curr-n, p.Period).div(prev)
		return int64(p.Period - q - elapsed)
	}
	// In the next window, curr becomes prev and nothing is counted yet.
	toNext := p.Period - elapsed
	if curr <= p.Rate-n {
		return int64(toNext)
	}
	q, _ := mul(p.Rate-n, p.Period).div(curr) // below Period since Rate−n < curr
	return int64(toNext + p.Period - q)
}
