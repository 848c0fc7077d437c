package metrics

import "github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"

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
		ns.domains[dom.Name] = m.carryDomain(old.domains[dom.Name], dom)
	}
	m.dropStale(old, ns)
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

// carryDomain returns the metrics of dom for a new state: od's (nil when dom is new)
// series of the rules dom still has, and new series for the rest.
func (m *Metrics) carryDomain(od *domainMetrics, dom rules.Domain) *domainMetrics {
	var nd *domainMetrics
	if od != nil {
		nd = &domainMetrics{name: od.name, storeErrors: od.storeErrors, latency: od.latency,
			rules: map[string]*ruleMetrics{}, extra: map[string]*ruleMetrics{}}
	} else {
		nd = m.newDomain(dom.Name)
	}
	for _, r := range dom.Rules {
		m.keepRule(nd, od, dom.Name, r.ID, r.Detailed)
	}
	if id := dom.Name + ".override"; nd.rules[id] == nil {
		m.keepRule(nd, od, dom.Name, id, false)
	}
	return nd
}

// keepRule puts the series of rule id into nd: od's when it has them, switched to
// detailed or not, else new ones.
func (m *Metrics) keepRule(nd, od *domainMetrics, domain, id string, detailed bool) {
	if nd.rules[id] != nil {
		return // two rules of one ID ("key_value" and "key" "value") share its series
	}
	var rm *ruleMetrics
	if od != nil {
		if rm = od.rules[id]; rm == nil {
			rm = od.extra[id]
		}
	}
	switch {
	case rm == nil:
		rm = m.newRule(domain, id, detailed)
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
	rm.kind.Store(kindOf(detailed))
	nd.rules[id] = rm
}

// dropStale deletes the series of old that ns no longer holds: those of removed rules
// and of removed domains.
func (m *Metrics) dropStale(old, ns *state) {
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
			m.deleteDomain(name)
		}
	}
}
