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

// ErrConfig is wrapped by every error an Interceptor's configuration causes.
var ErrConfig = errors.New("grpclimit: invalid configuration")

// ErrNoKey is wrapped by the errors [Interceptor.OnError] hears about calls whose rule
// found no usable key.
var ErrNoKey = errors.New("grpclimit: no key")
