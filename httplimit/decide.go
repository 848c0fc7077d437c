package httplimit

import (
	"fmt"
	"net/http"

	"github.com/go-ratelimit/ratelimit/internal/errwrap"
	"github.com/go-ratelimit/ratelimit/internal/multi"
)

// inlineRules is the number of rules per request decided without allocating.
const inlineRules = 8

// ipCache holds the client IP key of a request, computed at most once.
type ipCache struct {
	have bool
	n    int // length of the key in buf
	err  error
	buf  [64]byte // holds any IP key: at most 43 bytes
}

// decide fills d for r: the rules that apply, their keys and costs, one decision.
func (m *Middleware) decide(r *http.Request, d *Decision) {
	d.limiting = -1
	c, err := m.compile()
	if err != nil {
		d.Status, d.Err = http.StatusInternalServerError, err
		return
	}
	var ib [inlineRules]int
	idx, ok := c.match(ib[:0], r)
	if !ok || len(idx) == 0 {
		d.Allowed = true
		return
	}
	var eb [inlineRules]multi.Entry
	es := eb[:0]
	if len(idx) > inlineRules {
		es = make([]multi.Entry, 0, len(idx))
	}
	var ip ipCache
	for _, i := range idx {
		e, skip, err := c.entry(c.rules[i], r, &ip)
		if err != nil {
			d.Status, d.Err = http.StatusBadRequest, err
			return
		}
		if skip {
			continue
		}
		if o, refused := c.set.Prepare(&e); refused {
			d.fill(c, nil, o)
			return
		}
		es = append(es, e)
	}
	if len(es) == 0 {
		d.Allowed = true
		return
	}
	d.fill(c, es, c.set.Decide(r.Context(), es))
}

// entry returns rule cr's part of the decision on r: its key and cost. skip reports that
// the rule does not apply (MissingKeySkip); an error rejects the request with 400.
func (c *compiled) entry(cr *crule, r *http.Request, ip *ipCache) (e multi.Entry, skip bool, err error) {
	key, skip, err := c.key(cr, r, ip)
	if err != nil || skip {
		if err != nil {
			err = errwrap.Op("httplimit", fmt.Sprintf("rule %q", cr.rule.Name), err)
		}
		return e, skip, err
	}
	n := 1
	if cr.cost != nil {
		if n, err = cr.cost(r); err != nil {
			return e, false, fmt.Errorf("httplimit: rule %q: cost: %w", cr.rule.Name, err)
		}
	}
	return multi.Entry{Rule: cr.rule, Key: key, N: n}, false, nil
}

// fill translates the outcome of a decision on es into d: the decided rules, in rule
// order, and the status.
func (d *Decision) fill(c *compiled, es []multi.Entry, o multi.Outcome) {
	results := d.results[:]
	if len(es) > inlineRules {
		d.more = make([]RuleResult, 0, len(es))
		results = d.more[:len(es)]
	}
	out := 0
	for k := range es {
		e := &es[k]
		if !e.Decided {
			continue
		}
		if k == o.Limiting {
			d.limiting = out
		}
		results[out] = RuleResult{Name: e.Rule.Name, KeyClass: e.Rule.Class, Algorithm: e.Rule.Limiter.Algorithm(), Result: e.Result, rule: c.rules[e.Rule.Index]}
		out++
	}
	d.n = out
	if d.more != nil {
		d.more = d.more[:out]
	}
	switch o.Verdict {
	case multi.Allowed:
		d.Allowed = true
	case multi.Limited:
		d.Status, d.RetryAfter = http.StatusTooManyRequests, d.Results()[d.limiting].Result.RetryAfter
	case multi.TooCostly:
		d.Status = http.StatusRequestEntityTooLarge
	case multi.BadCost:
		d.Status, d.Err = http.StatusInternalServerError, fmt.Errorf("%w: %w", ErrConfig, o.Err)
		return
	case multi.Unavailable:
		d.Status = http.StatusServiceUnavailable
	}
	if o.Err != nil {
		d.Err = fmt.Errorf("httplimit: %w", o.Err)
	}
}

// key returns the namespaced key of rule cr for r, or skip when MissingKeySkip applies.
// err is set when the request must be rejected for want of a key.
func (c *compiled) key(cr *crule, r *http.Request, ip *ipCache) (key string, skip bool, err error) {
	if cr.key == nil {
		a, ierr := ip.get(c, r)
		if ierr != nil {
			if cr.missing == MissingKeySkip {
				return "", true, nil
			}
			return "", false, ierr
		}
		var buf [128]byte
		return string(append(append(buf[:0], cr.rule.Prefix...), a...)), false, nil
	}
	k, kerr := cr.key(r)
	if kerr == nil && k != "" && len(k) <= multi.MaxKeyLen {
		return cr.rule.Prefix + k, false, nil
	}
	if kerr == nil {
		kerr = fmt.Errorf("%w: key of %d bytes", ErrNoKey, len(k))
	}
	switch cr.missing {
	case MissingKeySkip:
		return "", true, nil
	case MissingKeyReject:
		return "", false, kerr
	}
	a, ierr := ip.get(c, r)
	if ierr != nil {
		return "", false, fmt.Errorf("%w; and for the fallback: %w", kerr, ierr)
	}
	return cr.rule.FallbackPrefix + string(a), false, nil
}

// get returns the client IP key of r.
func (ip *ipCache) get(c *compiled, r *http.Request) ([]byte, error) {
	if !ip.have {
		// Keep only a length: a slice of its own buf would make ip escape to the heap.
		b, err := c.ip.appendKey(ip.buf[:0], r)
		ip.n, ip.err, ip.have = copy(ip.buf[:], b), err, true
	}
	return ip.buf[:ip.n], ip.err
}
