package httplimit

import (
	"net/http"
	"strconv"

	"github.com/go-ratelimit/ratelimit/internal/sfield"
)

// setHeaders sets on h the rate-limit headers of d in the Middleware's HeaderStyle, and
// Retry-After when d is a 429. Handler calls it before the next handler or DenyHandler
// runs. Nothing is set when no rule was
// decided. The values are described in the package documentation.
func (m *Middleware) setHeaders(h http.Header, d *Decision) {
	if d.Status == http.StatusTooManyRequests {
		h["Retry-After"] = []string{strconv.FormatInt(sfield.CeilSeconds(d.RetryAfter), 10)}
	}
	lim, ok := d.Limiting()
	if !ok {
		return
	}
	t := lim.Result.ResetAfter
	if !lim.Result.Allowed {
		t = lim.Result.RetryAfter
	}
	style := m.Headers
	if style == HeadersIETF || style == HeadersBoth {
		var buf [256]byte
		vals := make([]string, 2) // one allocation for both fields' values
		results := d.Results()
		if len(results) == 1 {
			vals[0] = policyText(&results[0])
		} else {
			b := buf[:0]
			for i := range results {
				if i > 0 {
					b = append(b, ", "...)
				}
				b = appendPolicy(b, &results[i])
			}
			vals[0] = string(b)
		}
		vals[1] = string(sfield.AppendLimit(buf[:0], lim.Name, lim.Result.Remaining, t))
		h["Ratelimit-Policy"] = vals[0:1:1]
		h["Ratelimit"] = vals[1:2:2]
	}
	if style == HeadersLegacy || style == HeadersBoth || style == HeadersDraft03 {
		vals := make([]string, 3)
		vals[0] = strconv.FormatInt(int64(lim.Result.Limit.Burst), 10)
		vals[1] = strconv.FormatInt(int64(lim.Result.Remaining), 10)
		vals[2] = strconv.FormatInt(sfield.CeilSeconds(t), 10)
		names := &legacyNames
		if style == HeadersDraft03 {
			names = &draft03Names
		}
		h[names[0]] = vals[0:1:1]
		h[names[1]] = vals[1:2:2]
		h[names[2]] = vals[2:3:3]
	}
}

// policyText returns the RateLimit-Policy item of rr, cached per rule and limit.
func policyText(rr *RuleResult) string {
	if rr.rule == nil {
		return string(appendPolicy(nil, rr))
	}
	if p := rr.rule.policy.Load(); p != nil && p.limit == rr.Result.Limit {
		return p.text
	}
	p := &policyItem{limit: rr.Result.Limit, text: string(appendPolicy(nil, rr))}
	rr.rule.policy.Store(p)
	return p.text
}

// appendPolicy appends the RateLimit-Policy item of rr.
func appendPolicy(b []byte, rr *RuleResult) []byte {
	return sfield.AppendPolicy(b, rr.Name, rr.Result.Limit)
}

// The names of the limit, remaining and reset fields, in canonical form.
var (
	legacyNames  = [3]string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}
	draft03Names = [3]string{"Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"}
)
