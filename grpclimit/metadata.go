package grpclimit

import (
	"strconv"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/sfield"
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
		b = strconv.AppendInt(b, sfield.CeilSeconds(r.RetryAfter), 10)
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
			b = sfield.AppendPolicy(b, rules[i].name, res[i].Limit)
		}
		field(MetadataPolicy)
		b = sfield.AppendLimit(b, rules[lim].name, r.Remaining, t)
		field(MetadataRateLimit)
	}
	if style == HeadersLegacy || style == HeadersBoth {
		b = strconv.AppendInt(b, int64(r.Limit.Burst), 10)
		field(MetadataLimit)
		b = strconv.AppendInt(b, int64(r.Remaining), 10)
		field(MetadataRemaining)
		b = strconv.AppendInt(b, sfield.CeilSeconds(t), 10)
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
