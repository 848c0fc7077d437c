package multi

import (
	"reflect"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// report sends one event about key (namespaced) to the Set's Observer and to the rule's
// Limiter's (r.obs, nil when it is the Set's).
func (s *Set) report(r *Rule, key string, o ratelimit.Outcome, latency time.Duration, err error) {
	lo := r.obs
	if s.obs == nil && lo == nil {
		return
	}
	e := ratelimit.Event{Rule: r.Name, KeyClass: r.Class, Key: r.userKey(key), Outcome: o, Latency: latency, Err: err}
	if s.obs != nil {
		s.obs.Observe(e)
	}
	if lo != nil {
		lo.Observe(e)
	}
}

// reportOne reports the decision of a single entry.
func (s *Set) reportOne(e *Entry, res ratelimit.Result, err error, latency time.Duration) {
	switch {
	case err != nil:
		s.report(e.Rule, e.Key, ratelimit.Failed, latency, err)
	case res.Allowed:
		s.report(e.Rule, e.Key, ratelimit.Allowed, latency, nil)
	default:
		s.report(e.Rule, e.Key, ratelimit.Denied, latency, nil)
	}
}

// reportGroup reports an entry of a group decided together: an entry that would have
// admitted a denied group took nothing and is not reported.
func (s *Set) reportGroup(e *Entry, ok bool, err error, latency time.Duration) {
	switch {
	case err != nil:
		s.report(e.Rule, e.Key, ratelimit.Failed, latency, err)
	case ok:
		s.report(e.Rule, e.Key, ratelimit.Allowed, latency, nil)
	case !e.Result.Allowed:
		s.report(e.Rule, e.Key, ratelimit.Denied, latency, nil)
	}
}

// sameObserver reports whether a and b are the same Observer. Values of types that
// cannot be compared (an ObserverFunc) are never the same.
func sameObserver(a, b ratelimit.Observer) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return reflect.TypeOf(a).Comparable() && reflect.TypeOf(b) == reflect.TypeOf(a) && a == b
}

// userKey is key without the rule's namespace: the key as the front end computed it.
func (r *Rule) userKey(key string) string {
	if k, ok := strings.CutPrefix(key, r.Prefix); ok {
		return k
	}
	if k, ok := strings.CutPrefix(key, r.FallbackPrefix); ok {
		return k
	}
	return key
}
