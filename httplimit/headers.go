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
	var buf [256]byte
	style := m.Headers
	if style == HeadersIETF || style == HeadersBoth {
		b := buf[:0]
		for i, rr := range d.Results() {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPolicy(b, &rr)
		}
		h["Ratelimit-Policy"] = []string{string(b)}
		b = buf[:0]
		b = appendString(b, lim.Name)
		b = append(b, ";r="...)
		b = appendSFInt(b, int64(lim.Result.Remaining))
		b = append(b, ";t="...)
		b = appendSFInt(b, ceilSeconds(t))
		h["Ratelimit"] = []string{string(b)}
	}
	if style == HeadersLegacy || style == HeadersBoth {
		h["X-Ratelimit-Limit"] = []string{strconv.FormatInt(int64(lim.Result.Limit.Burst), 10)}
		h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(int64(lim.Result.Remaining), 10)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(ceilSeconds(t), 10)}
	}
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
