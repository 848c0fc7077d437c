// Package sfield writes the rate-limit fields of draft-ietf-httpapi-ratelimit-headers-10
// as RFC 9651 structured-field items, for the HTTP and gRPC integrations alike.
package sfield

import (
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// AppendPolicy appends the RateLimit-Policy item of a rule: "name";q=<capacity>;w=<seconds
// to grant the capacity from nothing, rounded up, at least 1>. l is the effective limit of
// a Result, whose Burst is the capacity.
func AppendPolicy(b []byte, name string, l ratelimit.Limit) []byte {
	b = AppendString(b, name)
	b = append(b, ";q="...)
	b = AppendInt(b, int64(l.Burst))
	b = append(b, ";w="...)
	return AppendInt(b, max(CeilSeconds(fillTime(l.Burst, l.Rate, l.Period)), 1))
}

// AppendLimit appends the RateLimit item of a rule: "name";r=<remaining>;t=<seconds, t
// rounded up>.
func AppendLimit(b []byte, name string, remaining int, t time.Duration) []byte {
	b = AppendString(b, name)
	b = append(b, ";r="...)
	b = AppendInt(b, int64(remaining))
	b = append(b, ";t="...)
	return AppendInt(b, CeilSeconds(t))
}

// fillTime returns capacity·period/rate, rounded up: the window for window algorithms
// (capacity = rate), the refill time for buckets. Out-of-range limits give the longest
// duration.
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

// CeilSeconds returns d in whole seconds, rounded up; 0 for d ≤ 0.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d-1)/time.Second) + 1
}

// maxInt is the largest integer structured fields can carry (RFC 9651: 15 digits).
const maxInt = 999_999_999_999_999

// AppendInt appends v as a structured-field integer, clamped to [0, 10^15 − 1].
func AppendInt(b []byte, v int64) []byte {
	return strconv.AppendInt(b, min(max(v, 0), maxInt), 10)
}

// AppendString appends s as a structured-field string. Rule names are validated to need
// no escapes; quotes and backslashes are escaped anyway and other bytes outside printable
// ASCII become '?'.
func AppendString(b []byte, s string) []byte {
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
