// Package metrics holds the service's Prometheus metrics, served on GET /metrics.
//
// Every metric is named ratelimitd_*. The per-rule counters follow envoyproxy/ratelimit's
// statistics (total_hits, over_limit, near_limit, shadow_mode), counted in hits (the
// units a descriptor takes, its hits_addend), with calls (descriptors decided) beside
// them:
//
//	ratelimitd_rule_hits_total{domain, rule}            units asked for
//	ratelimitd_rule_calls_total{domain, rule}           descriptors decided
//	ratelimitd_rule_over_limit_total{domain, rule}      units over the limit, shadow mode included
//	ratelimitd_rule_near_limit_total{domain, rule}      units allowed beyond 80% of the capacity
//	ratelimitd_rule_shadow_total{domain, rule}          units over a shadow-mode limit (allowed)
//	ratelimitd_rule_detailed_overflow_total{domain, rule}
//	                                                    descriptors of a detailed_metric rule
//	                                                    counted under "<rule>.other"
//	ratelimitd_store_errors_total{domain}               requests the store could not decide
//	ratelimitd_unmatched_total{domain}                  descriptors no rule matched (allowed)
//	ratelimitd_decide_duration_seconds{domain}          histogram of one decision's time
//	ratelimitd_requests_total{transport, code}          requests per transport and outcome
//	ratelimitd_config_loads_total{result}               rule loads, "success" or "failure"
//	ratelimitd_config_last_load_failed                  1 after a rejected load, until a success
//	ratelimitd_config_last_success_timestamp_seconds    Unix time of the last successful load
//	ratelimitd_rules                                    rules loaded
//	ratelimitd_domains                                  domains loaded
//
// plus the Go runtime's go_* and the process's process_* metrics.
//
// Cardinality is bounded by the configuration, never by requests: the domain label is the
// request's domain only when the rules last passed to [Metrics.Loaded] have it, "unknown"
// otherwise; the rule label is the rule's ID ("domain.key_value.key", as
// envoyproxy/ratelimit names it), "<domain>.override" for a limit the request carries, or
// "unknown". A rule with detailed_metric is labelled instead by the request's values,
// "domain.key_value.key_value", for at most [MaxDetailed] distinct values per rule (each
// at most [MaxDetailedLen] bytes); further values count under "<rule>.other". When a load
// drops a domain or a rule, its series are deleted, unless they are shared: a domain named
// "unknown" counts in the series of unknown domains, and a detailed label equal to
// another rule's ID counts in that rule's series.
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
)

const (
	// MaxDetailed is the number of distinct request values a detailed_metric rule labels
	// its series with; the values beyond it count under "<rule>.other".
	MaxDetailed = 100
	// MaxDetailedLen is the longest detailed label value, in bytes; longer ones are cut.
	MaxDetailedLen = 256

	// Unknown is the domain and rule label of requests outside the loaded rules.
	Unknown = "unknown"
)

// LatencyBuckets are the upper bounds, in seconds, of ratelimitd_decide_duration_seconds:
// 50µs to 1s.
var LatencyBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
	100e-3, 250e-3, 500e-3, 1,
}

// transports and the engine's outcomes are the label values of
// ratelimitd_requests_total whose series are created up front; any other value counts as
// "other".
var transports = [...]string{"grpc", "json", "http"}

// Metrics is the service's metrics. It implements [engine.Observer]. Its methods are safe for concurrent use; the zero value is not
// usable, call [New].
type Metrics struct {
	reg *prometheus.Registry

	hits, calls, over, near, shadow, overflow *prometheus.CounterVec
	storeErrors, unmatched                    *prometheus.CounterVec
	latency                                   *prometheus.HistogramVec
	requests                                  *prometheus.CounterVec
	requestsFixed                             [len(transports)][engine.NumOutcomes]prometheus.Counter

	loadOK, loadFailed       prometheus.Counter
	lastFailed, lastSuccess  prometheus.Gauge
	rulesGauge, domainsGauge prometheus.Gauge

	// mu serializes Loaded and the creation of series on the hot path's slow branches.
	mu    sync.Mutex
	state atomic.Pointer[state]
	// domainRefs and ruleRefs count, under mu, the holders of each series by its label
	// values: two holders can share one series (a domain named "unknown" and the
	// fallback, a detailed label equal to another rule's ID), and a series is deleted
	// only when its last holder lets it go.
	domainRefs map[string]int
	ruleRefs   map[[2]string]int
}

var _ engine.Observer = (*Metrics)(nil)

// New returns Metrics with their own registry, which also holds the Go runtime and
// process collectors. Until [Metrics.Loaded] is called every domain is "unknown".
func New() *Metrics {
	dr := []string{"domain", "rule"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ratelimitd_" + name, Help: help}, labels)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "ratelimitd_" + name, Help: help})
	}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		hits:     counter("rule_hits_total", "Units asked of the rule (the sum of hits_addend).", dr),
		calls:    counter("rule_calls_total", "Descriptors decided by the rule.", dr),
		over:     counter("rule_over_limit_total", "Units over the rule's limit, shadow mode included.", dr),
		near:     counter("rule_near_limit_total", "Units allowed beyond 80% of the rule's capacity, as envoyproxy/ratelimit counts near_limit.", dr),
		shadow:   counter("rule_shadow_total", "Units over a shadow-mode rule's limit, allowed.", dr),
		overflow: counter("rule_detailed_overflow_total", "Descriptors of a detailed_metric rule counted under <rule>.other because the rule already has its maximum of detailed series.", dr),
		storeErrors: counter("store_errors_total",
			"Requests the store could not decide.", []string{"domain"}),
		unmatched: counter("unmatched_total",
			"Descriptors no rule of the domain matched, allowed as envoyproxy/ratelimit allows them; domain \"unknown\" counts the domains no rule file names.", []string{"domain"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ratelimitd_decide_duration_seconds",
			Help:    "Time to decide one request, store round trip included.",
			Buckets: LatencyBuckets,
		}, []string{"domain"}),
		requests: counter("requests_total",
			"Requests per transport (grpc, json, http) and outcome (OK, OVER_LIMIT, INVALID, ERROR).", []string{"transport", "code"}),
		lastFailed:   gauge("config_last_load_failed", "1 when the last load of the rules was rejected, 0 after a success."),
		lastSuccess:  gauge("config_last_success_timestamp_seconds", "Unix time of the last successful load of the rules."),
		rulesGauge:   gauge("rules", "Rules loaded."),
		domainsGauge: gauge("domains", "Domains loaded."),
		domainRefs:   map[string]int{},
		ruleRefs:     map[[2]string]int{},
	}
	loads := counter("config_loads_total", "Loads of the rules, by result: success (run-time changes included) or failure.", []string{"result"})
	m.loadOK = loads.WithLabelValues("success")
	m.loadFailed = loads.WithLabelValues("failure")
	for i, t := range transports {
		for j := range engine.NumOutcomes {
			m.requestsFixed[i][j] = m.requests.WithLabelValues(t, engine.Outcome(j+1).String())
		}
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.hits, m.calls, m.over, m.near, m.shadow, m.overflow,
		m.storeErrors, m.unmatched, m.latency, m.requests, loads,
		m.lastFailed, m.lastSuccess, m.rulesGauge, m.domainsGauge,
	)
	unknown := m.newDomain(Unknown)
	unknown.rules[Unknown] = m.newRule(Unknown, Unknown, false)
	m.state.Store(&state{domains: map[string]*domainMetrics{}, unknown: unknown})
	return m
}

// Register adds collectors of the service's own (listeners, the store) to the registry
// [Metrics.Handler] serves. It panics, as prometheus.MustRegister does, on a collector
// that is invalid or already registered: a programming error.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
}

// Handler returns the /metrics endpoint over the Metrics' registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// label returns s as a valid label value: invalid UTF-8 replaced, so that creating a
// series never fails.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
