package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
)

// Algorithm selects how a Limit is enforced. The zero value is invalid.
type Algorithm uint8

// The six algorithms. Their exact semantics are in the package documentation.
const (
	FixedWindow          Algorithm = iota + 1 // counts per epoch-aligned window; allows 2× Rate across a boundary
	SlidingWindowLog                          // exact: remembers every unit of the last Period; O(Rate) memory
	SlidingWindowCounter                      // weighted estimate over two windows; O(1) memory
	TokenBucket                               // Burst tokens, refilled at Rate per Period
	LeakyBucket                               // a meter: level drains at Rate per Period, holds up to Burst
	GCRA                                      // one timestamp; same decisions as TokenBucket
)

var algorithmNames = [...]string{
	FixedWindow:          "fixed_window",
	SlidingWindowLog:     "sliding_window_log",
	SlidingWindowCounter: "sliding_window_counter",
	TokenBucket:          "token_bucket",
	LeakyBucket:          "leaky_bucket",
	GCRA:                 "gcra",
}

// Valid reports whether a is one of the six algorithms.
func (a Algorithm) Valid() bool { return a >= FixedWindow && a <= GCRA }

func (a Algorithm) isBucket() bool { return a == TokenBucket || a == LeakyBucket || a == GCRA }

// String returns the name [ParseAlgorithm] accepts, such as "token_bucket", or
// "Algorithm(9)" for an invalid value.
func (a Algorithm) String() string {
	if !a.Valid() {
		return "Algorithm(" + strconv.Itoa(int(a)) + ")"
	}
	return algorithmNames[a]
}

// ParseAlgorithm returns the Algorithm named name: "fixed_window", "sliding_window_log",
// "sliding_window_counter", "token_bucket", "leaky_bucket" or "gcra". Case is ignored and
// hyphens may stand for underscores.
func ParseAlgorithm(name string) (Algorithm, error) {
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	for a := FixedWindow; a <= GCRA; a++ {
		if algorithmNames[a] == norm {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not one of fixed_window, sliding_window_log, sliding_window_counter, token_bucket, leaky_bucket, gcra", ErrInvalidAlgorithm, name)
}
