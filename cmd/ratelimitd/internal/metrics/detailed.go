package metrics

import "github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"

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
// MaxDetailed of them, was deleted or is not detailed.
func (m *Metrics) addDetailed(rm *ruleMetrics, key string) *counterSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm.dead || rm.kind.Load() == kindBase {
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
// rm was deleted or is not detailed.
func (m *Metrics) otherSet(rm *ruleMetrics) *counterSet {
	cs, ov := rm.other.Load(), rm.overflow.Load()
	if cs == nil || ov == nil {
		m.mu.Lock()
		if rm.dead || rm.kind.Load() == kindBase {
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
