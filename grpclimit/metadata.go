package grpclimit

import (
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"google.golang.org/grpc/metadata"
)

// The metadata keys the interceptors send; the package documentation gives their values.
const (
	MetadataPolicy     = "ratelimit-policy"      // IETF: "name";q=<capacity>;w=<seconds>, one item per rule
	MetadataRateLimit  = "ratelimit"             // IETF: "name";r=<remaining>;t=<seconds>
	MetadataLimit      = "x-ratelimit-limit"     // legacy: the capacity, in units
	MetadataRemaining  = "x-ratelimit-remaining" // legacy: the units left
	MetadataReset      = "x-ratelimit-reset"     // legacy: t, in seconds from now
	MetadataRetryAfter = "retry-after"           // denials: seconds, rounded up, before retrying
)

// metadata returns the rate-limit metadata of a decision: rules[i] got res[i], and
// res[lim] is the limiting result. It returns nil when nothing is to be sent. All values
// share one string and one slice: a few allocations per call, whatever the style.
func (c *compiled) metadata(rules []*crule, res []ratelimit.Result, lim int, denied bool) metadata.MD {
	if lim < 0 || (c.headers == HeadersNone && !denied) {
		return nil
	}
	r := res[lim]
	t := r.ResetAfter
	if denied {
		t = r.RetryAfter
	}
	var keyBuf [6]string
	var endBuf [6]int
	keys, ends := keyBuf[:0], endBuf[:0]
	var buf [512]byte
	b := buf[:0]
	field := func(key string) {
		keys, ends = append(keys, key), append(ends, len(b))
	}
	if denied {
		b = strconv.AppendInt(b, ceilSeconds(r.RetryAfter), 10)
		field(MetadataRetryAfter)
	}
	style := c.headers
	if style == HeadersIETF || style == HeadersBoth {
		// One item per rule, in the order of the rules.
		var orderBuf [8]int
		order := orderBuf[:0]
		for i := range rules {
			j := len(order)
			order = append(order, i)
			for ; j > 0 && rules[order[j-1]].index > rules[i].index; j-- {
				order[j] = order[j-1]
			}
			order[j] = i
		}
		for k, i := range order {
			if k > 0 {
				b = append(b, ", "...)
			}
			b = appendPolicy(b, rules[i].name, res[i].Limit)
		}
		field(MetadataPolicy)
		b = appendString(b, rules[lim].name)
		b = append(b, ";r="...)
		b = appendSFInt(b, int64(r.Remaining))
		b = append(b, ";t="...)
		b = appendSFInt(b, ceilSeconds(t))
		field(MetadataRateLimit)
	}
	if style == HeadersLegacy || style == HeadersBoth {
		b = strconv.AppendInt(b, int64(r.Limit.Burst), 10)
		field(MetadataLimit)
		b = strconv.AppendInt(b, int64(r.Remaining), 10)
		field(MetadataRemaining)
		b = strconv.AppendInt(b, ceilSeconds(t), 10)
		field(MetadataReset)
	}
	all := string(b)
	vals := make([]string, len(keys))
	md := make(metadata.MD, len(keys))
	start := 0
	for i, k := range keys {
		vals[i] = all[start:ends[i]]
		start = ends[i]
		md[k] = vals[i : i+1 : i+1]
	}
	return md
}

// appendPolicy appends the ratelimit-policy item of a rule: "name";q=<capacity>;w=<seconds
// to grant the capacity from nothing, rounded up, at least 1>. l is the effective limit of
// a Result, whose Burst is the capacity.
func appendPolicy(b []byte, name string, l ratelimit.Limit) []byte {
	b = appendString(b, name)
	b = append(b, ";q="...)
	b = appendSFInt(b, int64(l.Burst))
	b = append(b, ";w="...)
	return appendSFInt(b, max(ceilSeconds(fillTime(l.Burst, l.Rate, l.Period)), 1))
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

// ceilSeconds returns d in whole seconds, rounded up; 0 for d ≤ 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d-1)/time.Second) + 1
}

// maxSFInt is the largest integer structured fields can carry (RFC 9651: 15 digits).
const maxSFInt = 999_999_999_999_999

func appendSFInt(b []byte, v int64) []byte {
	return strconv.AppendInt(b, min(max(v, 0), maxSFInt), 10)
}

// appendString appends s as a structured-field string. Rule names are validated to need
// no escapes; escape anyway.
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
