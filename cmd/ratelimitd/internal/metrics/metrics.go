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
//	ratelimitd_rule_near_limit_total{domain, rule}      units allowed with less than a fifth left
//	ratelimitd_rule_shadow_total{domain, rule}          units over a shadow-mode limit (allowed)
//	ratelimitd_rule_detailed_overflow_total{domain, rule}
//	                                                    descriptors of a detailed_metric rule
//	                                                    counted under "<rule>.other"
//	ratelimitd_store_errors_total{domain}               requests the store could not decide
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
// drops a domain or a rule, its series are deleted.
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
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

// transports and codes are the label values of ratelimitd_requests_total whose series are
// created up front; any other value counts as "other".
var (
	transports = [...]string{"grpc", "json", "http"}
	codes      = [...]string{"OK", "OVER_LIMIT", "INVALID", "ERROR"}
)

// Metrics is the service's metrics. It implements [engine.Observer] and the servers'
// request recorder. Its methods are safe for concurrent use; the zero value is not
// usable, call [New].
type Metrics struct {
	reg *prometheus.Registry

	hits, calls, over, near, shadow, overflow *prometheus.CounterVec
	storeErrors                               *prometheus.CounterVec
	latency                                   *prometheus.HistogramVec
	requests                                  *prometheus.CounterVec
	requestsFixed                             [len(transports)][len(codes)]prometheus.Counter

	loadOK, loadFailed       prometheus.Counter
	lastFailed, lastSuccess  prometheus.Gauge
	rulesGauge, domainsGauge prometheus.Gauge

	// mu serializes Loaded and the creation of series on the hot path's slow branches.
	mu    sync.Mutex
	state atomic.Pointer[state]
}

var _ engine.Observer = (*Metrics)(nil)

// state is what Loaded last published; its maps are never written after publication.
type state struct {
	domains map[string]*domainMetrics
	unknown *domainMetrics
}

type domainMetrics struct {
	name        string // the label value
	storeErrors prometheus.Counter
	latency     prometheus.Observer
	rules       map[string]*ruleMetrics
	// extra holds, under Metrics.mu, the rules met in requests that are not in rules: a
	// request decided on the previous set while Loaded ran.
	extra map[string]*ruleMetrics
}

type ruleMetrics struct {
	domain, id string // the label values
	base       atomic.Pointer[counterSet]
	// detailed maps a detailed label value to its counters; copied on write under
	// Metrics.mu, at most MaxDetailed entries.
	detailed atomic.Pointer[map[string]*counterSet]
	other    atomic.Pointer[counterSet]
	overflow atomic.Pointer[prometheus.Counter]
	dead     bool // deleted by Loaded; guarded by Metrics.mu
}

// counterSet is the counters of one (domain, rule) label pair.
type counterSet struct {
	hits, calls, over, near, shadow prometheus.Counter
}

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
		near:     counter("rule_near_limit_total", "Units allowed while less than a fifth of the rule's capacity was left.", dr),
		shadow:   counter("rule_shadow_total", "Units over a shadow-mode rule's limit, allowed.", dr),
		overflow: counter("rule_detailed_overflow_total", "Descriptors of a detailed_metric rule counted under <rule>.other because the rule already has its maximum of detailed series.", dr),
		storeErrors: counter("store_errors_total",
			"Requests the store could not decide.", []string{"domain"}),
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
	}
	loads := counter("config_loads_total", "Loads of the rules, by result: success (run-time changes included) or failure.", []string{"result"})
	m.loadOK = loads.WithLabelValues("success")
	m.loadFailed = loads.WithLabelValues("failure")
	for i, t := range transports {
		for j, c := range codes {
			m.requestsFixed[i][j] = m.requests.WithLabelValues(t, c)
		}
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.hits, m.calls, m.over, m.near, m.shadow, m.overflow,
		m.storeErrors, m.latency, m.requests, loads,
		m.lastFailed, m.lastSuccess, m.rulesGauge, m.domainsGauge,
	)
	unknown := m.newDomain(Unknown)
	unknown.rules[Unknown] = m.newRule(Unknown, Unknown, false)
	m.state.Store(&state{domains: map[string]*domainMetrics{}, unknown: unknown})
	return m
}

// Handler returns the /metrics endpoint over the Metrics' registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}

// Decided counts the decision st on one descriptor of a request of domain with the given
// entries, which took hits units. It is the engine's hot path: for a rule of the loaded
// set it does two map lookups and a few atomic additions, and allocates nothing. A nil st
// or st.Rule is ignored.
func (m *Metrics) Decided(domain string, entries []rules.Entry, st *engine.Status, hits uint64) {
	if st == nil || st.Rule == nil {
		return
	}
	s := m.state.Load()
	d := s.domains[domain]
	var rm *ruleMetrics
	switch {
	case d == nil:
		rm = s.unknown.rules[Unknown]
	default:
		if rm = d.rules[st.Rule.ID]; rm == nil {
			rm = m.extraRule(d, st.Rule.ID)
		}
	}
	var cs *counterSet
	if st.Rule.Detailed && d != nil {
		cs = m.detailedSet(rm, d.name, entries)
	} else {
		cs = rm.base.Load()
		if cs == nil {
			cs = m.baseSet(rm)
		}
	}
	if cs == nil {
		return // the rule's series were deleted by a load running meanwhile
	}
	h := float64(hits)
	cs.hits.Add(h)
	cs.calls.Inc()
	over := st.Code == engine.OverLimit || st.Shadow
	if over {
		cs.over.Add(h)
	}
	if st.Shadow {
		cs.shadow.Add(h)
	}
	if st.Near && !over {
		cs.near.Add(h)
	}
}

// Failed counts a request of domain the store could not decide.
func (m *Metrics) Failed(domain string, _ error) {
	m.domain(domain).storeErrors.Inc()
}

// Latency records the time one request of domain took to decide.
func (m *Metrics) Latency(domain string, d time.Duration) {
	m.domain(domain).latency.Observe(d.Seconds())
}

// Request counts one request served by transport ("grpc", "json" or "http") with the
// outcome code ("OK", "OVER_LIMIT", "INVALID" or "ERROR"); any other value counts as
// "other".
func (m *Metrics) Request(transport, code string) {
	i, j := index(transports[:], transport), index(codes[:], code)
	if i >= 0 && j >= 0 {
		m.requestsFixed[i][j].Inc()
		return
	}
	if i < 0 {
		transport = "other"
	}
	if j < 0 {
		code = "other"
	}
	m.requests.WithLabelValues(transport, code).Inc()
}

// Loaded records a successful load of the rules, from the rule files or a run-time
// change: set's domains and rules become the known label values (the series of the
// domains and rules set no longer has are deleted), the success is counted, the last-load
// failed gauge is cleared and the last-success time set to now. A nil set is ignored.
func (m *Metrics) Loaded(set *rules.Set) {
	if set == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.state.Load()
	ns := &state{domains: map[string]*domainMetrics{}, unknown: old.unknown}
	doms := set.Domains()
	for _, dom := range doms {
		od := old.domains[dom.Name]
		var nd *domainMetrics
		if od != nil {
			nd = &domainMetrics{name: od.name, storeErrors: od.storeErrors, latency: od.latency,
				rules: map[string]*ruleMetrics{}, extra: map[string]*ruleMetrics{}}
		} else {
			nd = m.newDomain(dom.Name)
		}
		keep := func(id string, detailed bool) {
			var rm *ruleMetrics
			if od != nil {
				if rm = od.rules[id]; rm == nil {
					rm = od.extra[id]
				}
			}
			switch {
			case rm == nil:
				rm = m.newRule(dom.Name, id, detailed)
			case detailed:
				if rm.base.Swap(nil) != nil {
					m.deleteSet(rm.domain, rm.id)
				}
			default:
				m.dropDetailed(rm)
				if rm.base.Load() == nil {
					rm.base.Store(m.newSet(rm.domain, rm.id))
				}
			}
			nd.rules[id] = rm
		}
		for _, r := range dom.Rules {
			keep(r.ID, r.Detailed)
		}
		if id := dom.Name + ".override"; nd.rules[id] == nil {
			keep(id, false)
		}
		ns.domains[dom.Name] = nd
	}
	for name, od := range old.domains {
		nd := ns.domains[name]
		for _, group := range []map[string]*ruleMetrics{od.rules, od.extra} {
			for id, rm := range group {
				if nd == nil || nd.rules[id] != rm {
					m.deleteRule(rm)
				}
			}
		}
		if nd == nil {
			m.storeErrors.DeleteLabelValues(label(name))
			m.latency.DeleteLabelValues(label(name))
		}
	}
	m.state.Store(ns)
	m.loadOK.Inc()
	m.lastFailed.Set(0)
	m.lastSuccess.SetToCurrentTime()
	m.rulesGauge.Set(float64(set.Len()))
	m.domainsGauge.Set(float64(len(doms)))
}

// LoadFailed records a rejected load of the rules: it is counted and the last-load
// failed gauge set to 1 until the next [Metrics.Loaded].
func (m *Metrics) LoadFailed() {
	m.loadFailed.Inc()
	m.lastFailed.Set(1)
}

func (m *Metrics) domain(name string) *domainMetrics {
	s := m.state.Load()
	if d := s.domains[name]; d != nil {
		return d
	}
	return s.unknown
}

func (m *Metrics) newDomain(name string) *domainMetrics {
	return &domainMetrics{
		name:        name,
		storeErrors: m.storeErrors.WithLabelValues(label(name)),
		latency:     m.latency.WithLabelValues(label(name)),
		rules:       map[string]*ruleMetrics{},
		extra:       map[string]*ruleMetrics{},
	}
}

// newRule returns the metrics of one rule, with its series created unless the rule is
// detailed (whose series are created per request value). Called under m.mu or before
// publication.
func (m *Metrics) newRule(domain, id string, detailed bool) *ruleMetrics {
	rm := &ruleMetrics{domain: domain, id: id}
	if !detailed {
		rm.base.Store(m.newSet(domain, id))
	}
	return rm
}

// newSet creates the series of one label pair; label values are valid UTF-8.
func (m *Metrics) newSet(domain, rule string) *counterSet {
	domain, rule = label(domain), label(rule)
	return &counterSet{
		hits:   m.hits.WithLabelValues(domain, rule),
		calls:  m.calls.WithLabelValues(domain, rule),
		over:   m.over.WithLabelValues(domain, rule),
		near:   m.near.WithLabelValues(domain, rule),
		shadow: m.shadow.WithLabelValues(domain, rule),
	}
}

func (m *Metrics) deleteSet(domain, rule string) {
	domain, rule = label(domain), label(rule)
	for _, v := range []*prometheus.CounterVec{m.hits, m.calls, m.over, m.near, m.shadow} {
		v.DeleteLabelValues(domain, rule)
	}
}

// deleteRule deletes every series of rm. Called under m.mu.
func (m *Metrics) deleteRule(rm *ruleMetrics) {
	rm.dead = true
	if rm.base.Load() != nil {
		m.deleteSet(rm.domain, rm.id)
	}
	m.dropDetailed(rm)
}

// dropDetailed deletes the detailed series of rm. Called under m.mu.
func (m *Metrics) dropDetailed(rm *ruleMetrics) {
	if p := rm.detailed.Swap(nil); p != nil {
		for key := range *p {
			m.deleteSet(rm.domain, key)
		}
	}
	if rm.other.Swap(nil) != nil {
		m.deleteSet(rm.domain, rm.id+".other")
	}
	if rm.overflow.Swap(nil) != nil {
		m.overflow.DeleteLabelValues(label(rm.domain), label(rm.id))
	}
}

// extraRule returns the metrics of a rule of a known domain that the loaded set does not
// hold: a limit a request carried before its domain's override entry existed, or a
// request decided on the previous set.
func (m *Metrics) extraRule(d *domainMetrics, id string) *ruleMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.state.Load().domains[d.name]; cur != d {
		if cur == nil {
			return m.state.Load().unknown.rules[Unknown]
		}
		d = cur
		if rm := d.rules[id]; rm != nil {
			return rm
		}
	}
	if rm := d.extra[id]; rm != nil {
		return rm
	}
	rm := &ruleMetrics{domain: d.name, id: id}
	d.extra[id] = rm
	return rm
}

// baseSet creates the undetailed series of rm on first use.
func (m *Metrics) baseSet(rm *ruleMetrics) *counterSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm.dead {
		return nil
	}
	if cs := rm.base.Load(); cs != nil {
		return cs
	}
	cs := m.newSet(rm.domain, rm.id)
	rm.base.Store(cs)
	return cs
}

// detailedSet returns the counters of the request values of entries under the detailed
// rule rm, creating them while the rule has fewer than MaxDetailed.
func (m *Metrics) detailedSet(rm *ruleMetrics, domain string, entries []rules.Entry) *counterSet {
	var buf [MaxDetailedLen]byte
	key := appendDetailed(buf[:0], domain, entries)
	var cur map[string]*counterSet
	if p := rm.detailed.Load(); p != nil {
		cur = *p
		if cs := cur[string(key)]; cs != nil {
			return cs
		}
	}
	if len(cur) < MaxDetailed {
		if cs := m.addDetailed(rm, string(key)); cs != nil {
			return cs
		}
	}
	return m.otherSet(rm)
}

// addDetailed creates the series of key under rm, or returns nil when rm already has
// MaxDetailed of them or was deleted.
func (m *Metrics) addDetailed(rm *ruleMetrics, key string) *counterSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm.dead {
		return nil
	}
	var cur map[string]*counterSet
	if p := rm.detailed.Load(); p != nil {
		cur = *p
	}
	if cs := cur[key]; cs != nil {
		return cs
	}
	if len(cur) >= MaxDetailed {
		return nil
	}
	cs := m.newSet(rm.domain, key)
	next := make(map[string]*counterSet, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[key] = cs
	rm.detailed.Store(&next)
	return cs
}

// otherSet counts one overflow of rm and returns its "<rule>.other" counters, or nil when
// rm was deleted.
func (m *Metrics) otherSet(rm *ruleMetrics) *counterSet {
	cs, ov := rm.other.Load(), rm.overflow.Load()
	if cs == nil || ov == nil {
		m.mu.Lock()
		if rm.dead {
			m.mu.Unlock()
			return nil
		}
		if cs = rm.other.Load(); cs == nil {
			cs = m.newSet(rm.domain, rm.id+".other")
			rm.other.Store(cs)
		}
		if ov = rm.overflow.Load(); ov == nil {
			c := m.overflow.WithLabelValues(label(rm.domain), label(rm.id))
			ov = &c
			rm.overflow.Store(ov)
		}
		m.mu.Unlock()
	}
	(*ov).Inc()
	return cs
}

// appendDetailed appends the detailed label of entries, "domain.key_value.key", to b,
// cut at cap(b) bytes.
func appendDetailed(b []byte, domain string, entries []rules.Entry) []byte {
	add := func(s string) {
		n := min(len(s), cap(b)-len(b))
		b = append(b, s[:n]...)
	}
	add(domain)
	for _, e := range entries {
		add(".")
		add(e.Key)
		if e.Value != "" {
			add("_")
			add(e.Value)
		}
	}
	return b
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// label returns s as a valid label value: invalid UTF-8 replaced, so that creating a
// series never fails.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
