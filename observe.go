package ratelimit

import "time"

// Outcome is what became of one decision.
type Outcome uint8

// The outcomes an [Observer] hears about.
const (
	Allowed Outcome = iota + 1 // the units were taken (or, for n == 0, would be)
	Denied                     // the limit was reached; nothing was taken
	Failed                     // the store or the arguments failed: the decision is an error
)

// String returns "allowed", "denied" or "failed".
func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case Failed:
		return "failed"
	}
	return "Outcome(?)"
}

// Event describes one decision to an [Observer]. Rule and KeyClass have bounded
// cardinality, so they can label metrics; Key does not.
type Event struct {
	// Rule names the limit: the Limiter's [Options.Name], or the rule of an integration.
	Rule string

	// KeyClass says what kind of key was limited, such as "ip", "user" or "route"; empty
	// when unknown.
	KeyClass string

	// Key is the key decided, as the caller gave it (an integration's key without the
	// namespace it adds per rule). Its cardinality is unbounded: never label a metric with
	// it. An Observer that ranks keys keeps a bounded summary of them, as package topkeys does.
	Key string

	Outcome Outcome
	Latency time.Duration // time spent deciding, store included
	Err     error         // the failure, when Outcome is Failed
}

// Observer hears about decisions. Observe is called synchronously after each decision, from
// many goroutines at once: it must be fast and safe for concurrent use.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Options configures a Limiter made by [NewWithOptions]. The zero value, or nil, gives a
// Limiter like [New]'s.
type Options struct {
	// Name identifies the limiter in the events its Observer hears. Default "".
	Name string

	// KeyClass is reported in events as the kind of key this limiter sees. Default "".
	KeyClass string

	// Observer, if set, hears about every decision of AllowN (and so of Allow, Do, Wrap and
	// each attempt of WaitN). Default nil: no observation, and no clock read for it. The
	// integrations (httplimit, grpclimit) decide a rule's Limiter through its store and
	// report each decision both to their own Observer field and to this one (once when
	// they are the same), with the rule's name and key class.
	Observer Observer
}

func (l *Limiter) observe(start time.Time, key string, r Result, err error) {
	e := Event{Rule: l.opts.Name, KeyClass: l.opts.KeyClass, Key: key, Latency: time.Since(start), Err: err}
	switch {
	case err != nil:
		e.Outcome = Failed
	case r.Allowed:
		e.Outcome = Allowed
	default:
		e.Outcome = Denied
	}
	l.opts.Observer.Observe(e)
}
