package rules

import (
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Consistency says how a rule's limit is shared between the service's instances.
type Consistency uint8

const (
	// ConsistencyDefault is a rule that names none: the store's default applies (the
	// -store URL's consistency parameter, else strict).
	ConsistencyDefault Consistency = iota
	// Strict decides every hit in the store: one round trip, exact.
	Strict
	// Eventual decides from units leased from the store in chunks and spent in local
	// memory (redisstore.LeaseStore): never over the limit, at most a bounded share of it
	// unused, no round trip per hit.
	Eventual
)

// String returns the word a file uses; "" for ConsistencyDefault.
func (c Consistency) String() string {
	switch c {
	case Strict:
		return "strict"
	case Eventual:
		return "eventual"
	}
	return ""
}

// ParseConsistency reads strict or eventual, in any case.
func ParseConsistency(s string) (Consistency, bool) {
	switch strings.ToLower(s) {
	case "strict":
		return Strict, true
	case "eventual":
		return Eventual, true
	}
	return ConsistencyDefault, false
}

// LeaseAlgorithm reports whether the eventual mode can decide alg: only the algorithms
// whose state is a count per epoch-aligned window can spend, later in the window, a unit
// granted earlier (see the redisstore package documentation).
func LeaseAlgorithm(alg ratelimit.Algorithm) bool {
	return alg == ratelimit.FixedWindow || alg == ratelimit.SlidingWindowCounter
}

// MinSync and MaxSync bound a rule's sync interval.
const (
	MinSync = time.Millisecond
	MaxSync = time.Minute
)

// ParseSync reads a sync interval: a Go duration between MinSync and MaxSync.
func ParseSync(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= MinSync && d <= MaxSync
}

// consistency compiles the consistency and sync of rl into r.
func (c *compiler) consistency(rl *RateLimit, id string, r *Rule) {
	if rl.Consistency != "" {
		m, ok := ParseConsistency(rl.Consistency)
		if !ok {
			c.fail(rl.lines.of("consistency"), id, "invalid consistency '%s': want strict or eventual", rl.Consistency)
			return
		}
		r.Consistency = m
	}
	if r.Consistency == Eventual && !LeaseAlgorithm(r.Algorithm) {
		c.fail(rl.lines.of("consistency"), id, "consistency: eventual decides fixed_window and sliding_window_counter, not %v; use one of them, or consistency: strict", r.Algorithm)
	}
	if rl.Sync == "" {
		return
	}
	d, ok := ParseSync(rl.Sync)
	switch {
	case r.Consistency != Eventual:
		c.fail(rl.lines.of("sync"), id, "sync applies to consistency: eventual only; set consistency: eventual in the same rate_limit")
	case !ok:
		c.fail(rl.lines.of("sync"), id, "invalid sync '%s': want a duration from %v to %v, such as 100ms", rl.Sync, MinSync, MaxSync)
	default:
		r.Sync = d
	}
}
