package httplimit

import (
	"math"
	"net/http"
)

// CostFunc returns how many units of a rule's limit a request takes: 1 for "requests per
// period", its size for a byte quota, a weight for an expensive route. 0 takes nothing:
// the request is checked against the limit without consuming it. An error rejects the
// request with 400 Bad Request (the cost could not be read from it); a negative cost is a
// bug in the CostFunc and answers 500.
//
// A cost above the rule's capacity ([ratelimit.Limit.Capacity]) could never pass: the
// request is answered 413 Content Too Large at once, consuming nothing, rather than 429
// with a RetryAfter that would never come true.
type CostFunc func(*http.Request) (int, error)

// ContentLength returns a [CostFunc] that charges the request's body size in bytes, from
// its Content-Length, for byte quotas. A request whose length is not known in advance
// (chunked) is charged unknown units: choose it as the largest body you accept, or the
// rule's capacity to refuse such requests once the budget is partly used. Bodies larger
// than the capacity get 413 before they are read.
func ContentLength(unknown int) CostFunc {
	return func(r *http.Request) (int, error) {
		switch {
		case r.ContentLength < 0:
			return unknown, nil
		case r.ContentLength > math.MaxInt32:
			return math.MaxInt32, nil // above any sensible capacity: 413
		}
		return int(r.ContentLength), nil
	}
}

// Fixed returns a [CostFunc] that charges n units for every request: a weight for a rule
// on an expensive route.
func Fixed(n int) CostFunc {
	return func(*http.Request) (int, error) { return n, nil }
}
