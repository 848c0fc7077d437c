package grpclimit

import (
	"strconv"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/multi"
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

// The keys of the limit, remaining and reset values: legacy, and draft-03's
// ratelimit-limit, ratelimit-remaining and ratelimit-reset.
var (
	legacyKeys  = [3]string{MetadataLimit, MetadataRemaining, MetadataReset}
	draft03Keys = [3]string{"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}
)

// metadata returns the rate-limit metadata of a decision on es, whose entry lim is the
// limiting one. It returns nil when nothing is to be sent. All values share one string
// and one slice: a few allocations per call, whatever the style.
func (c *compiled) metadata(es []multi.Entry, lim int, denied bool) metadata.MD {
	if lim < 0 || (c.headers == httplimit.HeadersNone && !denied) {
		return nil
	}
	r := es[lim].Result
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
	if style == httplimit.HeadersIETF || style == httplimit.HeadersBoth {
		// One item per decided rule, in the order of the rules.
		first := true
		for i := range es {
			if !es[i].Decided {
				continue
			}
			if !first {
				b = append(b, ", "...)
			}
			first = false
			b = sfield.AppendPolicy(b, es[i].Rule.Name, es[i].Result.Limit)
		}
		field(MetadataPolicy)
		b = sfield.AppendLimit(b, es[lim].Rule.Name, r.Remaining, t)
		field(MetadataRateLimit)
	}
	if style == httplimit.HeadersLegacy || style == httplimit.HeadersBoth || style == httplimit.HeadersDraft03 {
		names := &legacyKeys
		if style == httplimit.HeadersDraft03 {
			names = &draft03Keys
		}
		b = strconv.AppendInt(b, int64(r.Limit.Burst), 10)
		field(names[0])
		b = strconv.AppendInt(b, int64(r.Remaining), 10)
		field(names[1])
		b = strconv.AppendInt(b, sfield.CeilSeconds(t), 10)
		field(names[2])
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
