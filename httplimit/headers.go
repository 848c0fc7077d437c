package httplimit

import (
	"math"
	"math/bits"
	"net/http"
	"strconv"
	"time"
)

// SetHeaders sets on h the rate-limit headers of d in the Middleware's HeaderStyle, and
// Retry-After when d is a 429. Handler calls it before the next handler or DenyHandler
// runs; it is exported for adapters to other frameworks. Nothing is set when no rule was
// decided. The values are described in the package documentation.
func (m *Middleware) SetHeaders(h http.Header, d *Decision) {
	if d.Status == http.StatusTooManyRequests {
		h["Retry-After"] = []string{strconv.FormatInt(ceilSeconds(d.RetryAfter), 10)}
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
		b := buf[:0]
		b = appendString(b, lim.Name)
		b = append(b, ";r="...)
		b = appendSFInt(b, int64(lim.Result.Remaining))
		b = append(b, ";t="...)
		b = appendSFInt(b, ceilSeconds(t))
		vals[1] = string(b)
		h["Ratelimit-Policy"] = vals[0:1:1]
		h["Ratelimit"] = vals[1:2:2]
	}
	if style == HeadersLegacy || style == HeadersBoth {
		vals := make([]string, 3)
		vals[0] = strconv.FormatInt(int64(lim.Result.Limit.Burst), 10)
		vals[1] = strconv.FormatInt(int64(lim.Result.Remaining), 10)
		vals[2] = strconv.FormatInt(ceilSeconds(t), 10)
		h["X-Ratelimit-Limit"] = vals[0:1:1]
		h["X-Ratelimit-Remaining"] = vals[1:2:2]
		h["X-Ratelimit-Reset"] = vals[2:3:3]
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

// appendPolicy appends the RateLimit-Policy item of rr: "name";q=<capacity>;w=<seconds
// to refill the capacity from empty, rounded up>.
func appendPolicy(b []byte, rr *RuleResult) []byte {
	l := rr.Result.Limit
	b = appendString(b, rr.Name)
	b = append(b, ";q="...)
	b = appendSFInt(b, int64(l.Burst))
	b = append(b, ";w="...)
	return appendSFInt(b, max(ceilSeconds(fillTime(l.Burst, l.Rate, l.Period)), 1))
}

// fillTime returns capacity·period/rate, the time a limit takes to grant capacity units
// from nothing: the window for window algorithms (capacity = rate), the refill time for
// buckets. Out-of-range limits give the longest duration.
func fillTime(capacity, rate int, period time.Duration) time.Duration {
	if capacity <= 0 || rate <= 0 || period <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(capacity), uint64(period))
	if hi >= uint64(rate) {
		return math.MaxInt64
	}
	q, rem := bits.Div64(hi, lo, uint64(rate))
	if rem > 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(q)
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d-1)/time.Second) + 1
}

// maxSFInt is the largest integer RFC 9651 structured fields can carry (15 digits).
const maxSFInt = 999_999_999_999_999

func appendSFInt(b []byte, v int64) []byte {
	return strconv.AppendInt(b, min(max(v, 0), maxSFInt), 10)
}

// appendString appends s as a structured-field string; rule names are validated to need
// no escapes, but escape anyway.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return append(b, '"')
}
