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
		od := old.domains[dom.Name]
		var nd *domainMetrics
		if od != nil {
			nd = &domainMetrics{name: od.name, storeErrors: od.storeErrors, latency: od.latency,
				rules: map[string]*ruleMetrics{}, extra: map[string]*ruleMetrics{}}
		} else {
			nd = m.newDomain(dom.Name)
		}
		keep := func(id string, detailed bool) {
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
			rm.kind.Store(kindOf(detailed))
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
			m.deleteDomain(name)
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
