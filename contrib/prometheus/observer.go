// Package promlimit exposes rate-limit decisions as Prometheus metrics: it is a
// [ratelimit.Observer] that counts decisions and measures their latency.
//
//	obs, err := promlimit.New(prometheus.DefaultRegisterer, nil)
//	if err != nil { ... }
//	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerSecond(10),
//		&ratelimit.Options{Name: "api", KeyClass: "ip", Observer: obs})
//
// It registers two metrics:
//
//	ratelimit_decisions_total{rule, key_class, outcome}        counter
//	ratelimit_decision_duration_seconds{rule, outcome}         histogram
//
// outcome is "allowed", "denied" or "failed". rule and key_class come from the [ratelimit.Event]:
// from configuration (a limiter's or an integration rule's name and key class), never from
// the keys themselves, so there is never one series per client. As a guard against a
// misconfiguration that would feed them unbounded values, the distinct values of each
// label are capped ([Options.MaxRules], [Options.MaxKeyClasses]): values seen after the
// cap is reached are counted under "other" (as is a rule or key class named "other").
// Values that are not valid UTF-8 are repaired, since Prometheus refuses them.
//
// Observe allocates nothing once the series of an event's labels exist: the series are
// cached per label set.
//
// [RegisterConcurrency] exports the state of a concurrency limiter (package concurrency),
// read at each scrape: its adaptive limit, requests in flight and queued, rejections,
// drops, and each partition's in-flight requests and share.
package promlimit

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-ratelimit/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics' names, before any [Options.Namespace], and the folded label value.
const (
	DecisionsName = "ratelimit_decisions_total"           // counter{rule, key_class, outcome}
	DurationName  = "ratelimit_decision_duration_seconds" // histogram{rule, outcome}

	// OtherLabel replaces rule and key class values beyond the caps.
	OtherLabel = "other"
)

const (
	defaultMaxRules      = 100
	defaultMaxKeyClasses = 20
	// maxCached bounds the cache of label sets seen as they were sent, before folding.
	maxCached = 4096
)

// DefaultBuckets returns the latency buckets used when [Options.Buckets] is nil, in
// seconds: from 250 ns, the cost of an in-memory decision, to 100 ms, a Redis round trip
// in trouble.
func DefaultBuckets() []float64 {
	return []float64{
		250e-9, 500e-9,
		1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
	}
}

// Options configures an Observer. The zero value, or nil, gives the defaults.
type Options struct {
	// Namespace, if set, prefixes the metric names: "<Namespace>_ratelimit_decisions_total".
	// Default "".
	Namespace string

	// ConstLabels are added to every series, such as {"service": "billing"}. Default none.
	ConstLabels prometheus.Labels

	// Buckets are the latency histogram's upper bounds, in seconds, increasing. Default
	// [DefaultBuckets].
	Buckets []float64

	// MaxRules caps the distinct values of the rule label. Once that many values have
	// been seen, new ones are counted under "other". Default 100; negative means no
	// value is kept: every rule is "other".
	MaxRules int

	// MaxKeyClasses caps the distinct values of the key_class label in the same way.
	// Default 20; negative means every key class is "other".
	MaxKeyClasses int
}

// Observer is a [ratelimit.Observer] that records decisions in Prometheus metrics. Create
// it with [New]. It is safe for concurrent use.
type Observer struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec

	// cache maps label sets as events carry them to their series. It is replaced, never
	// changed, so Observe reads it without a lock; mu serializes the writers.
	cache atomic.Pointer[map[labels]series]

	mu      sync.Mutex
	rules   folder
	classes folder
	canon   map[labels]series // series by folded label set
	dropped atomic.Uint64
}

var _ ratelimit.Observer = (*Observer)(nil)

// labels is an event's label set.
type labels struct {
	rule, class string
	outcome     ratelimit.Outcome
}

// series are the metrics of one label set.
type series struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New returns an Observer whose metrics are registered with reg; nil reg means
// [prometheus.DefaultRegisterer]. It fails if the metrics are already registered, or if
// the buckets do not increase.
func New(reg prometheus.Registerer, opts *Options) (*Observer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	if o.Buckets == nil {
		o.Buckets = DefaultBuckets()
	}
	for i := 1; i < len(o.Buckets); i++ {
		if !(o.Buckets[i] > o.Buckets[i-1]) {
			return nil, fmt.Errorf("promlimit: buckets must increase: %v", o.Buckets)
		}
	}
	if o.MaxRules == 0 {
		o.MaxRules = defaultMaxRules
	}
	if o.MaxKeyClasses == 0 {
		o.MaxKeyClasses = defaultMaxKeyClasses
	}
	obs := &Observer{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace:   o.Namespace,
			Name:        DecisionsName,
			Help:        "Rate-limit decisions, by rule, key class and outcome (allowed, denied, failed).",
			ConstLabels: o.ConstLabels,
		}, []string{"rule", "key_class", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:   o.Namespace,
			Name:        DurationName,
			Help:        "Time spent deciding, store included, by rule and outcome.",
			ConstLabels: o.ConstLabels,
			Buckets:     o.Buckets,
		}, []string{"rule", "outcome"}),
		rules:   folder{max: o.MaxRules},
		classes: folder{max: o.MaxKeyClasses},
		canon:   make(map[labels]series),
	}
	empty := make(map[labels]series)
	obs.cache.Store(&empty)
	if err := reg.Register(obs.decisions); err != nil {
		return nil, fmt.Errorf("promlimit: register %s: %w", DecisionsName, err)
	}
	if err := reg.Register(obs.duration); err != nil {
		reg.Unregister(obs.decisions)
		return nil, fmt.Errorf("promlimit: register %s: %w", DurationName, err)
	}
	return obs, nil
}

// Observe counts the decision and records its latency. It allocates nothing once the
// series of e's labels exist.
func (o *Observer) Observe(e ratelimit.Event) {
	k := labels{rule: e.Rule, class: e.KeyClass, outcome: e.Outcome}
	s, ok := (*o.cache.Load())[k]
	if !ok {
		s, ok = o.slow(k)
		if !ok {
			o.dropped.Add(1)
			return
		}
	}
	s.count.Inc()
	s.duration.Observe(e.Latency.Seconds())
}

// slow finds or creates the series of k, folding its values past the caps.
func (o *Observer) slow(k labels) (series, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cache := *o.cache.Load()
	if s, ok := cache[k]; ok {
		return s, true
	}
	c := labels{rule: o.rules.fold(k.rule), class: o.classes.fold(k.class), outcome: k.outcome}
	s, ok := o.canon[c]
	if !ok {
		outcome := outcomeLabel(k.outcome)
		count, err := o.decisions.GetMetricWithLabelValues(c.rule, c.class, outcome)
		if err != nil {
			return series{}, false
		}
		duration, err := o.duration.GetMetricWithLabelValues(c.rule, outcome)
		if err != nil {
			return series{}, false
		}
		s = series{count: count, duration: duration}
		o.canon[c] = s
	}
	if len(cache) < maxCached {
		next := make(map[labels]series, len(cache)+1)
		for k, v := range cache {
			next[k] = v
		}
		next[k] = s
		o.cache.Store(&next)
	}
	return s, true
}

// Dropped returns the number of events that could not be recorded. It stays 0 unless the
// metrics' label values were refused, which this package's folding prevents.
func (o *Observer) Dropped() uint64 { return o.dropped.Load() }

func outcomeLabel(o ratelimit.Outcome) string {
	switch o {
	case ratelimit.Allowed, ratelimit.Denied, ratelimit.Failed:
		return o.String()
	}
	return "unknown"
}

// folder keeps up to max distinct label values and folds the others into OtherLabel. A
// value that is itself "other" is counted there too. Invalid UTF-8 is repaired first, as
// Prometheus refuses it.
type folder struct {
	max  int
	seen map[string]bool
}

func (f *folder) fold(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if f.seen[v] {
		return v
	}
	if len(f.seen) >= f.max || v == OtherLabel {
		return OtherLabel
	}
	if f.seen == nil {
		f.seen = make(map[string]bool)
	}
	f.seen[v] = true
	return v
}
