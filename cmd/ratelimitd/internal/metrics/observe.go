package metrics

import (
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// Decided counts the decision st on one descriptor of a request of domain with the given
// entries, which took hits units. It is the engine's hot path: for a rule of the loaded
// set it does two map lookups and a few atomic additions, and allocates nothing. A
// descriptor no rule matched counts in ratelimitd_unmatched_total of its domain ("unknown"
// for a domain outside the loaded rules). A nil st, or one with neither a rule nor
// Unmatched, is ignored.
func (m *Metrics) Decided(domain string, entries []rules.Entry, st *engine.Status, hits uint64) {
	if st != nil && st.Unmatched {
		m.domain(domain).unmatched.Inc()
		return
	}
	if st == nil || st.Rule == nil {
		return
	}
	m.decided(m.state.Load(), domain, entries, st, hits)
}

// decided is Decided on the state s, which a load may have replaced meanwhile.
func (m *Metrics) decided(s *state, domain string, entries []rules.Entry, st *engine.Status, hits uint64) {
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
	// A detailed rule's series are its domain's; when a load dropped the domain meanwhile,
	// extraRule answers with the unknown rule, which counts undetailed.
	if d != nil && rm.domain == d.name && rm.isDetailed(st.Rule.Detailed) {
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
	if !over {
		if n := nearUnits(st, hits); n > 0 {
			cs.near.Add(float64(n))
		}
	}
}

// nearUnits returns how many of the hits an allowed decision took landed beyond 80% of
// the rule's capacity, as envoyproxy/ratelimit counts near_limit: with a capacity of 10
// and 1 unit left after 2 hits, 1 of them.
func nearUnits(st *engine.Status, hits uint64) uint64 {
	c := uint64(st.Rule.Limit.Capacity(st.Rule.Algorithm))
	used := c - min(uint64(st.Remaining), c)
	threshold := c * 4 / 5
	if used <= threshold {
		return 0
	}
	return min(used-threshold, hits)
}

// Failed counts a request of domain the store could not decide.
func (m *Metrics) Failed(domain string, _ error) {
	m.domain(domain).storeErrors.Inc()
}

// Latency records the time one request of domain took to decide.
func (m *Metrics) Latency(domain string, d time.Duration) {
	m.domain(domain).latency.Observe(d.Seconds())
}

// Served counts one request served by transport ("grpc", "json" or "http") with outcome
// o, labelled by o's String ("OK", "OVER_LIMIT", "INVALID" or "ERROR"); any other
// transport or outcome counts as "other".
func (m *Metrics) Served(transport string, o engine.Outcome) {
	i, j := index(transports[:], transport), int(o)-1
	valid := j >= 0 && j < engine.NumOutcomes
	if i >= 0 && valid {
		m.requestsFixed[i][j].Inc()
		return
	}
	code := "other"
	if valid {
		code = o.String()
	}
	if i < 0 {
		transport = "other"
	}
	m.requests.WithLabelValues(transport, code).Inc()
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
