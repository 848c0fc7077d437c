package grpclimit

import (
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit"
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
	var f fields
	var buf [512]byte
	b := buf[:0]
	if denied {
		b = strconv.AppendInt(b, sfield.CeilSeconds(r.RetryAfter), 10)
		f.end(MetadataRetryAfter, b)
	}
	style := c.headers
	if style == httplimit.HeadersIETF || style == httplimit.HeadersBoth {
		b = appendIETF(b, &f, es, lim, t)
	}
	switch style {
	case httplimit.HeadersLegacy, httplimit.HeadersBoth:
		b = appendTriple(b, &f, &legacyKeys, r, t)
	case httplimit.HeadersDraft03:
		b = appendTriple(b, &f, &draft03Keys, r, t)
	}
	return f.md(string(b))
}

// fields records the metadata values written one after another into one buffer: the key
// of each and where its value ends.
type fields struct {
	keys [6]string
	ends [6]int
	n    int
}

// end records that the value of key ends at the end of b.
func (f *fields) end(key string, b []byte) {
	f.keys[f.n], f.ends[f.n] = key, len(b)
	f.n++
}

// md returns the recorded fields, their values cut out of all, as one metadata.MD whose
// values share one slice.
func (f *fields) md(all string) metadata.MD {
	vals := make([]string, f.n)
	md := make(metadata.MD, f.n)
	start := 0
	for i, k := range f.keys[:f.n] {
		vals[i] = all[start:f.ends[i]]
		start = f.ends[i]
		md[k] = vals[i : i+1 : i+1]
	}
	return md
}

// appendIETF appends the IETF fields: the policy, one item per decided rule in the order
// of the rules, and the limiting rule's remaining units and time t.
func appendIETF(b []byte, f *fields, es []multi.Entry, lim int, t time.Duration) []byte {
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
	f.end(MetadataPolicy, b)
	b = sfield.AppendLimit(b, es[lim].Rule.Name, es[lim].Result.Remaining, t)
	f.end(MetadataRateLimit, b)
	return b
}

// appendTriple appends the limit, remaining and reset fields of r under names, the reset
// being t.
func appendTriple(b []byte, f *fields, names *[3]string, r ratelimit.Result, t time.Duration) []byte {
	b = strconv.AppendInt(b, int64(r.Limit.Burst), 10)
	f.end(names[0], b)
	b = strconv.AppendInt(b, int64(r.Remaining), 10)
	f.end(names[1], b)
	b = strconv.AppendInt(b, sfield.CeilSeconds(t), 10)
	f.end(names[2], b)
	return b
}
