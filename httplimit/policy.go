package httplimit

import "errors"

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
// the exact mapping.
type HeaderStyle uint8

const (
	// HeadersIETF sends the structured fields of draft-ietf-httpapi-ratelimit-headers-10:
	// RateLimit-Policy: "name";q=100;w=60 and RateLimit: "name";r=42;t=17. The default.
	HeadersIETF HeaderStyle = iota

	// HeadersLegacy sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
	// (seconds from now), the convention most existing clients read.
	HeadersLegacy

	// HeadersBoth sends both sets.
	HeadersBoth

	// HeadersNone sends no rate-limit header; Retry-After is still sent on 429.
	HeadersNone
)

// ErrConfig is wrapped by every error a Middleware's configuration causes.
var ErrConfig = errors.New("httplimit: invalid configuration")
