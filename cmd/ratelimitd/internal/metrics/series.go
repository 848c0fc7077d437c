package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// state is what Loaded last published; its maps are never written after publication.
type state struct {
	domains map[string]*domainMetrics
	unknown *domainMetrics
}

type domainMetrics struct {
	name        string // the label value
	storeErrors prometheus.Counter
	unmatched   prometheus.Counter
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
	// kind is how the series are labelled, set under Metrics.mu: for a rule of the loaded
	// set, as that rule says, whatever the rules a request was decided on; for an extra
	// rule, as the request's rule says.
	kind atomic.Uint32
	dead bool // deleted by Loaded; guarded by Metrics.mu
}

// The kinds of ruleMetrics.
const (
	kindRequest  = iota // an extra rule: as the request's rule says
	kindBase            // labelled by the rule
	kindDetailed        // labelled by the request's values
)

func kindOf(detailed bool) uint32 {
	if detailed {
		return kindDetailed
	}
	return kindBase
}

// isDetailed reports whether rm's series are labelled by the request's values, for a
// request decided on a rule whose detailed_metric is requested.
func (rm *ruleMetrics) isDetailed(requested bool) bool {
	switch rm.kind.Load() {
	case kindBase:
		return false
	case kindDetailed:
		return true
	}
	return requested
}

// counterSet is the counters of one (domain, rule) label pair.
type counterSet struct {
	hits, calls, over, near, shadow prometheus.Counter
}

func (m *Metrics) domain(name string) *domainMetrics {
	s := m.state.Load()
	if d := s.domains[name]; d != nil {
		return d
	}
	return s.unknown
}

// newDomain returns the metrics of one domain, with its series. Called under m.mu or
// before publication.
func (m *Metrics) newDomain(name string) *domainMetrics {
	m.domainRefs[label(name)]++
	return &domainMetrics{
		name:        name,
		storeErrors: m.storeErrors.WithLabelValues(label(name)),
		unmatched:   m.unmatched.WithLabelValues(label(name)),
		latency:     m.latency.WithLabelValues(label(name)),
		rules:       map[string]*ruleMetrics{},
		extra:       map[string]*ruleMetrics{},
	}
}

// deleteDomain lets go of the series newDomain created for name, deleting them unless
// another holder shares them. Called under m.mu.
func (m *Metrics) deleteDomain(name string) {
	name = label(name)
	if m.domainRefs[name]--; m.domainRefs[name] > 0 {
		return
	}
	delete(m.domainRefs, name)
	m.storeErrors.DeleteLabelValues(name)
	m.unmatched.DeleteLabelValues(name)
	m.latency.DeleteLabelValues(name)
}

// newRule returns the metrics of one rule, with its series created unless the rule is
// detailed (whose series are created per request value). Called under m.mu or before
// publication.
func (m *Metrics) newRule(domain, id string, detailed bool) *ruleMetrics {
	rm := &ruleMetrics{domain: domain, id: id}
	rm.kind.Store(kindOf(detailed))
	if !detailed {
		rm.base.Store(m.newSet(domain, id))
	}
	return rm
}

// newSet creates the series of one label pair; label values are valid UTF-8. Each call
// is paired with one deleteSet. Called under m.mu or before publication.
func (m *Metrics) newSet(domain, rule string) *counterSet {
	domain, rule = label(domain), label(rule)
	m.ruleRefs[[2]string{domain, rule}]++
	return &counterSet{
		hits:   m.hits.WithLabelValues(domain, rule),
		calls:  m.calls.WithLabelValues(domain, rule),
		over:   m.over.WithLabelValues(domain, rule),
		near:   m.near.WithLabelValues(domain, rule),
		shadow: m.shadow.WithLabelValues(domain, rule),
	}
}

// deleteSet lets go of the series of one label pair, deleting them unless another holder
// shares them. Called under m.mu.
func (m *Metrics) deleteSet(domain, rule string) {
	domain, rule = label(domain), label(rule)
	k := [2]string{domain, rule}
	if m.ruleRefs[k]--; m.ruleRefs[k] > 0 {
		return
	}
	delete(m.ruleRefs, k)
	for _, v := range []*prometheus.CounterVec{m.hits, m.calls, m.over, m.near, m.shadow} {
		v.DeleteLabelValues(domain, rule)
	}
}

// deleteRule lets go of every series of rm and marks it dead. Called under m.mu.
func (m *Metrics) deleteRule(rm *ruleMetrics) {
	rm.dead = true
	if rm.base.Swap(nil) != nil {
		m.deleteSet(rm.domain, rm.id)
	}
	m.dropDetailed(rm)
}

// dropDetailed lets go of the detailed series of rm. Called under m.mu.
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

// baseSet creates the undetailed series of rm on first use, or returns nil when rm was
// deleted or is detailed.
func (m *Metrics) baseSet(rm *ruleMetrics) *counterSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm.dead || rm.kind.Load() == kindDetailed {
		return nil
	}
	if cs := rm.base.Load(); cs != nil {
		return cs
	}
	cs := m.newSet(rm.domain, rm.id)
	rm.base.Store(cs)
	return cs
}
