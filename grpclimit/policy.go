package grpclimit

import (
	"context"
	"errors"
)

// CostFunc returns the units a call costs under a rule. It must be safe for concurrent use.
type CostFunc func(ctx context.Context, fullMethod string, req any) int

// MissingKeyPolicy says what happens to a call whose rule's [KeyFunc] finds no key, or one
// longer than 4096 bytes. No policy pools such calls into one shared bucket, where one
// client could exhaust everyone's budget.
type MissingKeyPolicy uint8

const (
	// MissingKeyFallback limits the call by its client IP address instead, under the
	// same rule and limit but in a namespace of its own, so a call cannot escape a rule
	// by leaving out its metadata. When the client has no IP address either (a Unix
	// socket), the call is rejected as by MissingKeyReject. The default: it never leaves
	// a rule unenforced and never turns away clients that are merely anonymous.
	MissingKeyFallback MissingKeyPolicy = iota

	// MissingKeyReject fails the call with codes.InvalidArgument.
	MissingKeyReject

	// MissingKeySkip exempts the call from the rule: for rules meant only for some
	// calls, such as a per-user limit next to a per-IP one that covers anonymous clients.
	MissingKeySkip
)

// HeaderStyle selects the rate-limit metadata the interceptors send. Values are those of
// the rule closest to exhaustion; the package documentation gives the exact mapping.
type HeaderStyle uint8

const (
	// HeadersIETF sends the structured fields of draft-ietf-httpapi-ratelimit-headers-10
	// as metadata: ratelimit-policy: "name";q=100;w=60 and ratelimit: "name";r=42;t=17.
	// The default.
	HeadersIETF HeaderStyle = iota

	// HeadersLegacy sends x-ratelimit-limit, x-ratelimit-remaining and
	// x-ratelimit-reset (seconds from now), the convention most existing clients read.
	HeadersLegacy

	// HeadersBoth sends both sets.
	HeadersBoth

	// HeadersNone sends no rate-limit metadata; retry-after is still sent with denials.
	// Allowed calls then allocate nothing for metadata.
	HeadersNone
)

// ErrConfig is wrapped by every error an Interceptor's configuration causes.
var ErrConfig = errors.New("grpclimit: invalid configuration")

// ErrNoKey is wrapped by the errors [Interceptor.OnError] hears about calls whose rule
// found no usable key.
var ErrNoKey = errors.New("grpclimit: no key")
