package engine

import (
	"math"
	"strconv"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/multi"
	"github.com/go-ratelimit/ratelimit/internal/sfield"
)

// headers returns resp's headers in style h: nothing when no enforced rule applied. The
// styles are httplimit's; the limit, remaining and reset triple (draft03, as
// envoyproxy/ratelimit sends it, or legacy) carries the rule's requests_per_unit, as
// envoyproxy/ratelimit's does.
func headers(h httplimit.HeaderStyle, resp *Response) []Header {
	if h == httplimit.HeadersNone {
		return nil
	}
	lim := limiting(resp.Statuses, resp.Code == OK)
	if lim == nil {
		return nil
	}
	var out []Header
	if h == httplimit.HeadersIETF || h == httplimit.HeadersBoth {
		var policy []byte
		for i := range resp.Statuses {
			st := &resp.Statuses[i]
			if !enforced(st) {
				continue
			}
			if len(policy) > 0 {
				policy = append(policy, ", "...)
			}
			policy = sfield.AppendPolicy(policy, policyName(st), capacityLimit(st.Rule))
		}
		out = append(out,
			Header{"RateLimit-Policy", string(policy)},
			Header{"RateLimit", string(sfield.AppendLimit(nil, policyName(lim), int(lim.Remaining), lim.ResetAfter))})
	}
	if h == httplimit.HeadersDraft03 || h == httplimit.HeadersLegacy || h == httplimit.HeadersBoth {
		prefix := ""
		if h != httplimit.HeadersDraft03 {
			prefix = "X-"
		}
		out = append(out,
			Header{prefix + "RateLimit-Limit", strconv.FormatUint(uint64(lim.Rule.RequestsPerUnit), 10)},
			Header{prefix + "RateLimit-Remaining", strconv.FormatUint(uint64(lim.Remaining), 10)},
			Header{prefix + "RateLimit-Reset", strconv.FormatInt(sfield.CeilSeconds(lim.ResetAfter), 10)})
	}
	return out
}

// enforced reports whether st is the status of a rule that limits: not unlimited, not
// unmatched, not in shadow mode.
func enforced(st *Status) bool { return st.Rule != nil && !st.Rule.Shadow }

// limiting returns the status the headers describe, chosen as every front end chooses
// ([multi.Limiting]): when the request is allowed, the rule with the smallest share of
// its capacity left; otherwise the over-limit rule with the longest wait. nil when no
// enforced rule applied.
func limiting(sts []Status, allowed bool) *Status {
	var best *Status
	var bestRes ratelimit.Result
	for i := range sts {
		st := &sts[i]
		if !enforced(st) {
			continue
		}
		r := statusResult(st)
		if best == nil || multi.Closer(&r, &bestRes, allowed) {
			best, bestRes = st, r
		}
	}
	return best
}

// statusResult returns st as the Result the limiting choice ranks: over its limit, its
// ResetAfter is the wait.
func statusResult(st *Status) ratelimit.Result {
	r := ratelimit.Result{
		Allowed:   st.Code == OK,
		Remaining: int(min(st.Remaining, math.MaxInt32)),
		Limit:     capacityLimit(st.Rule),
	}
	if r.Allowed {
		r.ResetAfter = st.ResetAfter
	} else {
		r.RetryAfter = st.ResetAfter
	}
	return r
}

// capacityLimit returns the rule's limit with Burst filled in: its capacity.
func capacityLimit(r *rules.Rule) ratelimit.Limit {
	l := r.Limit
	if l.Burst == 0 {
		l.Burst = l.Rate
	}
	return l
}

func policyName(st *Status) string {
	if st.Rule.Name != "" {
		return st.Rule.Name
	}
	return st.Rule.ID
}
