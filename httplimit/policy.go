package httplimit

import (
	"errors"
	"fmt"
)

// MissingKeyPolicy says what happens to a request whose rule's [KeyFunc] fails or returns
// an empty key. No policy pools such requests into one shared bucket, where one client
// could exhaust everyone's budget.
type MissingKeyPolicy uint8

const (
	// MissingKeyFallback limits the request by its client IP instead, under the same
	// rule and limit but in a namespace of its own, so a request cannot escape a rule by
	// leaving out its header. When the client IP is unknown too, the request is
	// rejected as by MissingKeyReject. This is the default: it never leaves a rule
	// unenforced and never turns away clients that are merely anonymous.
	MissingKeyFallback MissingKeyPolicy = iota

	// MissingKeyReject answers 400 Bad Request.
	MissingKeyReject

	// MissingKeySkip exempts the request from the rule: for rules meant only for some
	// requests, such as a per-user limit next to a per-IP one that covers anonymous
	// clients.
	MissingKeySkip
)

// HeaderStyle selects the rate-limit headers a [Middleware] sends. Values are those of the
// rule closest to exhaustion (see [Decision.Limiting]); the package documentation gives
// the exact mapping. The grpclimit package sends the same styles as metadata, and the
// ratelimitd service as the headers it asks its proxy to add (its -headers flag takes the
// words of [HeaderStyle.String]).
type HeaderStyle uint8

const (
	// HeadersIETF sends the structured fields of draft-ietf-httpapi-ratelimit-headers-10:
	// RateLimit-Policy: "name";q=100;w=60 and RateLimit: "name";r=42;t=17. The default.
	HeadersIETF HeaderStyle = iota

	// HeadersLegacy sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
	// (seconds from now), the convention most existing clients read.
	HeadersLegacy

	// HeadersBoth sends both sets, IETF and legacy.
	HeadersBoth

	// HeadersNone sends no rate-limit header; Retry-After is still sent on 429.
	HeadersNone

	// HeadersDraft03 sends RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
	// (seconds from now), the fields of draft-ietf-httpapi-ratelimit-headers-03, which
	// envoyproxy/ratelimit sends.
	HeadersDraft03
)

var headerStyleNames = [...]string{"ietf", "legacy", "both", "none", "draft03"}

// String returns "ietf", "legacy", "both", "none" or "draft03", the words
// [ParseHeaderStyle] reads.
func (h HeaderStyle) String() string {
	if int(h) < len(headerStyleNames) {
		return headerStyleNames[h]
	}
	return fmt.Sprintf("HeaderStyle(%d)", uint8(h))
}

// ParseHeaderStyle returns the style named "ietf", "legacy", "both", "none" or
// "draft03" (exactly these words, as [HeaderStyle.String] writes them).
func ParseHeaderStyle(s string) (HeaderStyle, error) {
	for i, name := range headerStyleNames {
		if s == name {
			return HeaderStyle(i), nil
		}
	}
	return 0, fmt.Errorf("httplimit: header style %q: want ietf, legacy, both, none or draft03", s)
}

// ErrConfig is wrapped by every error a Middleware's configuration causes.
var ErrConfig = errors.New("httplimit: invalid configuration")
