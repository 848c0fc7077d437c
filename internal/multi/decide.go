package multi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Entry is one rule's part of a decision. The front end sets Rule, Key (namespaced, see
// [Rule.Prefix]) and N; [Set.Decide] fills in the rest.
type Entry struct {
	Rule *Rule
	Key  string
	N    int

	// Result is the store's answer, valid when Decided. When the decision is a denial,
	// nothing was taken: Result.Allowed true marks entries that would have admitted.
	Result ratelimit.Result

	// Decided reports that the store answered for the entry. It is false when the
	// entry's store failed (failing open) or was never asked, because an earlier
	// group denied the decision or a cost was refused first.
	Decided bool

	limit    ratelimit.Limit
	prepared bool
	failed   error // the rule's limit is invalid: left out of the decision
}

// Verdict is what became of a decision.
type Verdict uint8

const (
	Allowed     Verdict = iota // every decided entry admitted it, or none applied
	Limited                    // a limit was reached; see Outcome.Limiting
	TooCostly                  // a cost above a rule's capacity: it can never pass
	BadCost                    // a negative cost: a configuration error
	Unavailable                // a store failed and the Set fails closed
)

// Outcome is the result of [Set.Decide].
type Outcome struct {
	Verdict Verdict

	// Limiting is the index of the entry rate-limit headers describe (see [Limiting]),
	// -1 when no entry was decided.
	Limiting int

	// Rule is the rule a TooCostly, BadCost or Unavailable verdict is about, and the
	// rule of Err.
	Rule *Rule

	// Err is the first error met, naming its rule: a store failure (also under
	// fail open, when the decision went on without it) or a refused cost. nil when none.
	Err error
}

// inline is the number of entries decided from fixed-size buffers.
const inline = 8

// batchBuf holds the requests and results of one TakeAll. The store's TakeAll is an
// interface call, so they would escape: pooled, deciding allocates nothing.
type batchBuf struct {
	reqs [inline]ratelimit.Request
	res  [inline]ratelimit.Result
}

var bufs = sync.Pool{New: func() any { return new(batchBuf) }}

// Decide decides es, all or nothing per store group, in the order the groups first
// appear in the rules, stopping at the first denial.
func (s *Set) Decide(ctx context.Context, es []Entry) Outcome {
	o := s.decide(ctx, es)
	for i := range es {
		es[i].prepared = false // an entry reused for another decision reads its limit again
	}
	return o
}

func (s *Set) decide(ctx context.Context, es []Entry) Outcome {
	if o, refused := s.prepareAll(es); refused {
		return o
	}
	out := Outcome{Verdict: Allowed, Limiting: -1}
	out.Rule, out.Err = firstFailure(es)
	if len(es) == 1 && out.Err == nil {
		return s.decideOne(ctx, &es[0])
	}
	if s.decideGroups(ctx, es, &out) {
		return out
	}
	out.Limiting = Limiting(es, out.Verdict == Allowed)
	return out
}

// prepareAll prepares the entries of es not yet prepared, and returns the outcome of the
// first one whose cost refuses the decision.
func (s *Set) prepareAll(es []Entry) (o Outcome, refused bool) {
	for i := range es {
		if e := &es[i]; !e.prepared {
			if o, refused := s.Prepare(e); refused {
				return o, true
			}
		}
	}
	return Outcome{}, false
}

// firstFailure returns the first entry of es whose rule failed as it was prepared: its
// rule and the failure, or nil and nil.
func firstFailure(es []Entry) (*Rule, error) {
	for i := range es {
		if e := &es[i]; e.failed != nil {
			return e.Rule, e.failed
		}
	}
	return nil, nil
}

// decideGroups decides the entries of es still to decide, store group by store group,
// into out: the first failure and its rule, and Limited at the first denial, after which
// the later groups are not asked. It reports whether the decision is over as Unavailable:
// a store failed under a closed policy.
func (s *Set) decideGroups(ctx context.Context, es []Entry, out *Outcome) (unavailable bool) {
	var ob [inline]int
	order := byGroup(ob[:0], es)
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && es[order[end]].Rule.group == es[order[start]].Rule.group {
			end++
		}
		ok, err := s.decideGroup(ctx, es, order[start:end])
		switch {
		case err != nil && out.Err == nil:
			out.Err, out.Rule = err, es[order[end-1]].Rule
		case err == nil && !ok:
			out.Verdict = Limited
			end = len(order) // the groups after a denial are not asked
		}
		if err != nil && s.closed {
			out.Verdict = Unavailable
			return true
		}
		start = end
	}
	return false
}

// byGroup appends to dst the indices of the entries of es to decide, ordered by group,
// rule order kept within a group.
func byGroup(dst []int, es []Entry) []int {
	for i := range es {
		if es[i].failed != nil {
			continue
		}
		j := len(dst)
		dst = append(dst, i)
		for ; j > 0 && es[dst[j-1]].Rule.group > es[i].Rule.group; j-- {
			dst[j] = dst[j-1]
		}
		dst[j] = i
	}
	return dst
}

// Prepare reads the limit of e's rule and applies the cost rule: a negative cost or one
// above the capacity refuses the decision before any store is asked. Decide prepares the
// entries not yet prepared; a front end that calls Prepare as it builds each entry stops
// at the first refused cost, before the later rules' keys and costs are computed.
func (s *Set) Prepare(e *Entry) (o Outcome, refused bool) {
	e.Decided, e.prepared, e.failed = false, true, nil
	e.limit = e.Rule.Limiter.Limit()
	if err := e.limit.Validate(); err != nil {
		// SetLimit broke the rule's limit: the rule fails alone, as a store failure,
		// rather than failing the whole batch of its store.
		e.failed = fmt.Errorf("rule %q: %w", e.Rule.Name, err)
		s.report(e.Rule, e.Key, ratelimit.Failed, 0, e.failed)
		if s.closed {
			return Outcome{Verdict: Unavailable, Limiting: -1, Rule: e.Rule, Err: e.failed}, true
		}
		return Outcome{}, false
	}
	r := e.Rule
	switch capacity := e.limit.Capacity(r.Limiter.Algorithm()); {
	case e.N < 0:
		err := fmt.Errorf("rule %q: %w: cost %d", r.Name, ratelimit.ErrInvalidCost, e.N)
		s.report(r, e.Key, ratelimit.Failed, 0, err)
		return Outcome{Verdict: BadCost, Limiting: -1, Rule: r, Err: err}, true
	case e.N > capacity:
		err := fmt.Errorf("rule %q: %w: cost %d exceeds the capacity %d", r.Name, ratelimit.ErrInvalidCost, e.N, capacity)
		s.report(r, e.Key, ratelimit.Denied, 0, nil)
		return Outcome{Verdict: TooCostly, Limiting: -1, Rule: r, Err: err}, true
	}
	return Outcome{}, false
}

// decideOne decides a single entry with one Take: the common case.
func (s *Set) decideOne(ctx context.Context, e *Entry) Outcome {
	r := e.Rule
	var start time.Time
	if s.anyObs {
		start = time.Now()
	}
	res, err := r.store.Take(ctx, e.Key, r.Limiter.Algorithm(), e.limit, e.N)
	if s.anyObs {
		s.reportOne(e, res, err, time.Since(start))
	}
	if err != nil {
		err = fmt.Errorf("rule %q: %w", r.Name, err)
		if s.closed {
			return Outcome{Verdict: Unavailable, Limiting: -1, Rule: r, Err: err}
		}
		return Outcome{Verdict: Allowed, Limiting: -1, Rule: r, Err: err}
	}
	e.Result, e.Decided = res, true
	if !res.Allowed {
		return Outcome{Verdict: Limited}
	}
	return Outcome{Verdict: Allowed}
}

// decideGroup decides the entries sel picks out of es, which share one store.
func (s *Set) decideGroup(ctx context.Context, es []Entry, sel []int) (bool, error) {
	r0 := es[sel[0]].Rule
	var start time.Time
	if s.anyObs {
		start = time.Now()
	}
	var ok bool
	var err error
	if len(sel) == 1 {
		e := &es[sel[0]]
		e.Result, err = r0.store.Take(ctx, e.Key, r0.Limiter.Algorithm(), e.limit, e.N)
		ok = e.Result.Allowed
	} else {
		b := bufs.Get().(*batchBuf)
		reqs, res := b.reqs[:0], b.res[:len(sel)]
		if len(sel) > inline {
			reqs, res = make([]ratelimit.Request, 0, len(sel)), make([]ratelimit.Result, len(sel))
		}
		for _, k := range sel {
			e := &es[k]
			reqs = append(reqs, ratelimit.Request{Key: e.Key, Algorithm: e.Rule.Limiter.Algorithm(), Limit: e.limit, N: e.N})
		}
		ok, err = TakeAll(ctx, r0.store, reqs, res)
		for i, k := range sel {
			es[k].Result = res[i]
		}
		clear(b.reqs[:]) // drop the keys
		bufs.Put(b)
	}
	if s.anyObs {
		latency := time.Since(start)
		for _, k := range sel {
			s.reportGroup(&es[k], ok, err, latency)
		}
	}
	if err != nil {
		return false, fmt.Errorf("rule %q: %w", r0.Name, err)
	}
	for _, k := range sel {
		es[k].Decided = true
	}
	return ok, nil
}

// Limiting returns the index of the decided entry rate-limit headers describe, -1 when
// none: when allowed, the one with the smallest share of its capacity remaining (the
// longest ResetAfter among equals); otherwise the denying one with the longest
// RetryAfter.
func Limiting(es []Entry, allowed bool) int {
	best := -1
	for i := range es {
		if es[i].Decided && (best < 0 || closer(&es[i].Result, &es[best].Result, allowed)) {
			best = i
		}
	}
	if best >= 0 && !allowed && es[best].Result.Allowed {
		// A store that denied a batch without saying which limit: the first decided.
		for i := range es {
			if es[i].Decided {
				return i
			}
		}
	}
	return best
}

// Closer reports whether r is closer to exhaustion than b, as [Limiting] ranks results.
func Closer(r, b *ratelimit.Result, allowed bool) bool { return closer(r, b, allowed) }

func closer(r, b *ratelimit.Result, allowed bool) bool {
	if !allowed {
		if r.Allowed != b.Allowed {
			return !r.Allowed
		}
		return r.RetryAfter > b.RetryAfter
	}
	// Compare Remaining/capacity without dividing: r.Rem·b.Cap vs b.Rem·r.Cap.
	lhs := float64(r.Remaining) * float64(max(b.Limit.Burst, 1))
	rhs := float64(b.Remaining) * float64(max(r.Limit.Burst, 1))
	return lhs < rhs || lhs == rhs && r.ResetAfter > b.ResetAfter
}
