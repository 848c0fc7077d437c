package redisstore

import (
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// The local ledger of a lease: what a decision, a grant and a refill do to one key's
// lease, each at a local instant given in nanoseconds since the store's base. The methods
// hold no lock and read no clock: the caller holds e.mu and passes the instant, so that
// tests drive them on a synthetic clock (see leaselocal_test.go).

// minRetry is the shortest RetryAfter of a decision its lease could not serve.
const minRetry = int64(100 * time.Microsecond)

// spend decides cost units at now: it takes them from the lease if it holds them (a unit
// is never spent after its window's end, which expires marks), and reports whether a
// refill must be asked for: when the lease falls below half its size, or cannot serve the
// call, unless one is pending or Redis asked to wait.
func (e *lease) spend(now int64, cost uint64) (allowed, ask bool) {
	e.used = now
	if now >= e.expires {
		e.units = 0
	}
	if cost <= e.units {
		e.units -= cost
		e.allowed++
		allowed = true
	}
	switch {
	case !e.pending && now >= e.wait && (2*e.units < e.chunk || !allowed):
		e.pending, e.want = true, cost
		ask = true
	case e.pending && !allowed:
		e.want = max(e.want, cost)
	}
	return allowed, ask
}

// decision is the answer to a call spend decided at now; rtt is the last refill's round
// trip, the RetryAfter of a call that waits for a refill.
func (e *lease) decision(now int64, allowed bool, rtt int64) algo.Decision {
	d := algo.Decision{Allowed: allowed, Remaining: e.units + e.left}
	if e.expires > now {
		d.ResetAfter = e.expires - now
	}
	if !allowed {
		if now < e.wait && e.left == 0 && e.k.alg == ratelimit.FixedWindow && e.expires > now {
			d.RetryAfter = e.expires - now // nothing left until the window ends
		} else {
			d.RetryAfter = max(rtt, minRetry)
		}
	}
	return d
}

// resize adapts the size of the next lease to how long the last one lasted, at now: less
// than one interval doubles it (up to most), more than four halves it (down to what the
// pending refill must bring). It returns the units the refill asks for, 0 for none.
func (e *lease) resize(now, interval int64, most uint64) uint64 {
	if e.since > 0 {
		switch lasted := now - e.since; {
		case lasted < interval:
			e.chunk = min(2*e.chunk, most)
		case lasted > 4*interval:
			e.chunk = max(e.chunk/2, e.want, 1)
		}
	}
	var want uint64
	if e.units < e.chunk {
		want = e.chunk - e.units
	}
	return min(max(want, e.want), e.p.Cap)
}

// record applies a grant of g.granted units, asked for at sent and received at now. The
// grant ran after sent, so its window ends at most until after sent: a lease never
// outlives its window, whatever the round trip took. When Redis had less than want left,
// no refill is asked before the window ends (fixed window) or before interval passes
// (sliding window counter, whose units free up as the previous window's weight decays).
func (e *lease) record(g grant, want uint64, sent, now, interval int64) {
	e.pending, e.want = false, 0
	expires := sent + g.until*1000
	if g.start != e.start || now >= e.expires {
		e.units, e.start, e.expires = 0, g.start, expires
	} else {
		e.expires = min(e.expires, expires)
	}
	e.units += g.granted
	e.left = g.left
	e.since = now
	if g.granted < want && g.left == 0 {
		e.wait = now + interval
		if e.k.alg == ratelimit.FixedWindow {
			e.wait = e.expires
		}
	}
	if now >= e.expires {
		e.units = 0
	}
}

// failed records a refill that brought nothing: the next is asked for after interval.
func (e *lease) failed(now, interval int64) {
	e.pending, e.want = false, 0
	e.wait = now + interval
}

// unspent returns the units the lease holds that may still be spent at now.
func (e *lease) unspent(now int64) uint64 {
	if now >= e.expires {
		return 0
	}
	return e.units
}
