package engine

import (
	"fmt"
	"strconv"

	"github.com/go-ratelimit/ratelimit/internal/sfield"
)

// HeaderStyle selects the rate-limit headers a Response carries for the proxy to add.
type HeaderStyle uint8

const (
	// HeadersNone adds no headers, as envoyproxy/ratelimit does by default.
	HeadersNone HeaderStyle = iota
	// HeadersLegacy adds RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (whole
	// seconds) of the descriptor closest to its limit, as envoyproxy/ratelimit does when
	// its response headers are enabled.
	HeadersLegacy
	// HeadersIETF adds RateLimit-Policy, with every applied rule, and RateLimit, with the
	// rule closest to its limit, as draft-ietf-httpapi-ratelimit-headers-10 defines them.
	HeadersIETF
)

// ParseHeaderStyle reads "none", "legacy" or "ietf".
func ParseHeaderStyle(s string) (HeaderStyle, error) {
	switch s {
	case "none", "":
		return HeadersNone, nil
	case "legacy":
		return HeadersLegacy, nil
	case "ietf":
		return HeadersIETF, nil
	}
	return 0, fmt.Errorf("header style %q: want none, legacy or ietf", s)
}

func (h HeaderStyle) String() string {
	return [...]string{"none", "legacy", "ietf"}[min(int(h), 2)]
}

// headers returns resp's headers in style h: nothing when no rule applied.
func (h HeaderStyle) headers(resp *Response) []Header {
	if h == HeadersNone {
		return nil
	}
	lim := limiting(resp.Statuses)
	if lim == nil {
		return nil
	}
	if h == HeadersLegacy {
		return []Header{
			{"RateLimit-Limit", strconv.FormatUint(uint64(lim.Rule.RequestsPerUnit), 10)},
			{"RateLimit-Remaining", strconv.FormatUint(uint64(lim.Remaining), 10)},
			{"RateLimit-Reset", strconv.FormatInt(sfield.CeilSeconds(lim.ResetAfter), 10)},
		}
	}
	var policy []byte
	for i := range resp.Statuses {
		st := &resp.Statuses[i]
		if st.Rule == nil || st.Rule.Shadow {
			continue
		}
		if len(policy) > 0 {
			policy = append(policy, ", "...)
		}
		l := st.Rule.Limit
		if l.Burst == 0 {
			l.Burst = l.Rate
		}
		policy = sfield.AppendPolicy(policy, policyName(st), l)
	}
	return []Header{
		{"RateLimit-Policy", string(policy)},
		{"RateLimit", string(sfield.AppendLimit(nil, policyName(lim), int(lim.Remaining), lim.ResetAfter))},
	}
}

// limiting returns the status the headers describe: the first over its limit, else the
// one with the fewest units left; nil when no enforced rule applied.
func limiting(sts []Status) *Status {
	var best *Status
	for i := range sts {
		st := &sts[i]
		switch {
		case st.Rule == nil || st.Rule.Shadow: // a shadow rule never limits
		case st.Code == OverLimit:
			return st
		case best == nil || st.Remaining < best.Remaining:
			best = st
		}
	}
	return best
}

func policyName(st *Status) string {
	if st.Rule.Name != "" {
		return st.Rule.Name
	}
	return st.Rule.ID
}
