package httplimit

import (
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Decision is the outcome of [Middleware.Check] for one request.
type Decision struct {
	// Allowed reports whether the request may proceed: every rule that applies admitted
	// it, none applied, or a store failed and OnStoreError let it through.
	Allowed bool

	// Status is the status code the Handler answers instead of calling the next handler:
	// 0 when Allowed; 429 Too Many Requests; 413 Content Too Large (a cost above a
	// rule's capacity); 400 Bad Request (no key under MissingKeyReject, or a CostFunc
	// error); 503 Service Unavailable (a store failure under FailClosed); 500 Internal
	// Server Error (an invalid configuration).
	Status int

	// RetryAfter is, on a 429, how long the client should wait: the longest RetryAfter
	// of the rules that denied the request. Exact; the Retry-After header rounds it up
	// to whole seconds. 0 otherwise.
	RetryAfter time.Duration

	// Err is the error the request met, as Check returns it; nil when none.
	Err error

	results  [inlineRules]RuleResult
	more     []RuleResult // when more than inlineRules rules apply
	n        int
	limiting int // index in Results of the rule closest to exhaustion; -1 when none
}

// RuleResult is one rule's part of a [Decision].
type RuleResult struct {
	Name      string              // the rule's Name
	KeyClass  string              // the rule's KeyClass
	Algorithm ratelimit.Algorithm // the algorithm of the rule's Limiter

	// Result is the store's answer for the rule's key. When the request was denied,
	// nothing was taken from any rule: Result.Allowed true marks rules that would have
	// admitted it, and their Remaining is what is available now.
	Result ratelimit.Result

	rule *crule // for the cached RateLimit-Policy item; nil in RuleResults built elsewhere
}

// Results returns the rules that were decided for the request, in the order of
// [Middleware.Rules]. A rule is left out when it did not apply (another pattern, an
// excluded route, MissingKeySkip), when its store failed, or when it was never asked
// because a rule on an earlier store denied the request. The slice aliases d.
func (d *Decision) Results() []RuleResult {
	if d.more != nil {
		return d.more
	}
	return d.results[:d.n]
}

// Limiting returns the rule closest to exhaustion, whose values the rate-limit headers
// carry: on a denial, the denying rule with the longest RetryAfter; otherwise the rule
// with the smallest share of its capacity remaining (the longest ResetAfter among
// equals). ok is false when no rule was decided.
func (d *Decision) Limiting() (r RuleResult, ok bool) {
	if d.limiting < 0 || d.limiting >= d.n {
		return RuleResult{}, false
	}
	return d.Results()[d.limiting], true
}
