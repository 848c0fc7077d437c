package rowstate

import (
	"math/bits"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// GCRA is the argument set of the one-statement GCRA upsert. The statement keeps TAT as At
// whole nanoseconds plus X/Rate, and computes, all in 64-bit integers without overflow:
//
//	b  = (At, min(X, Rate−1)) if At > now or At = now and X > 0, else (now, 0)   -- max(TAT, now)
//	f  = b + (NQ, NR), carrying into At when b.X ≥ Rate − NR                      -- + n·T
//	allowed when f ≤ (now + CQ, CR), ordered by At then X                         -- ≤ now + Cap·T
//
// writing f when allowed, with Expires f.At, plus one when f.X > 0. That is exactly what
// the algo step does: (NQ, NR) is n·Period/Rate and (CQ, CR) Cap·Period/Rate as quotient
// and remainder, so T = Period/Rate is never rounded.
type GCRA struct {
	Rate   int64
	NQ, NR int64 // n·Period = NQ·Rate + NR
	CQ, CR int64 // Cap·Period = CQ·Rate + CR
}

// GCRAArgs returns the upsert's arguments for p and cost.
func GCRAArgs(p algo.Params, cost uint64) GCRA {
	qr := func(n uint64) (int64, int64) {
		hi, lo := bits.Mul64(n, p.Period)
		q, r := bits.Div64(hi, lo, p.Rate) // q ≤ Cap·Period/Rate, which Limit.Validate bounds
		return int64(q), int64(r)
	}
	g := GCRA{Rate: int64(p.Rate)}
	g.NQ, g.NR = qr(cost)
	g.CQ, g.CR = qr(p.Cap)
	return g
}

// GCRAAllowed returns the decision of an upsert that wrote (at, x) at now: the units were
// taken, and what the key has left follows from the new TAT alone.
func GCRAAllowed(p algo.Params, at, x, now int64) algo.Decision {
	_, d := algo.Take(ratelimit.GCRA, algo.State{At: at, X: uint64(x)}, now, p, 0)
	d.Allowed = true
	return d
}
