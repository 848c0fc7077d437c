// Package live is the service's view of itself for operators: per-rule decision and
// denial rates over the last two minutes, the most limited keys of each domain, the
// store's health and the rule set's version, as JSON, and the dashboard page that draws
// them. It observes the engine's decisions in front of the metrics.
package live

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/topkeys"
)

// History is the number of one-second samples kept per rule: two minutes.
const History = 120

// MaxDomains is the number of domains whose keys are ranked; the domains loaded after
// them are counted per rule but rank no keys.
const MaxDomains = 64

// keysPerDomain is the number of keys each domain's collector tracks per ranking: a
// key's count is short by at most about the domain's decisions of the last minute
// divided by it,
// in 0.65 MiB per domain (682,976 bytes, measured by Collector.Bytes).
const keysPerDomain = 256

// maxKey bounds the descriptor text a domain's collector sees, in bytes.
const maxKey = 128

// StoreHealth is what the store says of itself.
type StoreHealth struct {
	Kind          string `json:"kind"` // "memory" or "redis"
	Calls         uint64 `json:"calls"`
	Failures      uint64 `json:"failures"`
	PolicyAnswers uint64 `json:"policy_answers"` // decisions the fail policy answered
	BreakerOpens  uint64 `json:"breaker_opens"`
	BreakerOpen   bool   `json:"breaker_open"`
}

// Options configures a [Board].
type Options struct {
	// Next receives every event after the Board: the metrics. nil for none.
	Next engine.Observer
	// Store, when not nil, reports the store's health; nil reports a memory store.
	Store func() StoreHealth
}

// Board observes the engine and keeps what the dashboard shows. It is safe for
// concurrent use. [Board.Run] samples the rates once a second until its context ends.
type Board struct {
	opts  Options
	state atomic.Pointer[state]

	mu       sync.Mutex // guards what follows, and serializes Loaded
	top      map[string]*topkeys.Collector
	version  uint64
	loadedAt time.Time
	loadErr  string
	failedAt time.Time

	latencyN, latencySum, latencyMax atomic.Int64
	failures                         atomic.Uint64

	hist sync.Mutex
	lat  ring // mean decision latency per second, in microseconds
	maxL ring // greatest decision latency per second, in microseconds
	errs ring // store failures per second
}

// state is what the hot path reads: the domains and rules of the loaded set.
type state struct {
	domains map[string]*domain
}

type domain struct {
	name  string
	top   *topkeys.Collector // nil beyond MaxDomains
	rules map[string]*rule   // by rule ID
	order []*rule
}

type rule struct {
	id, name     string
	calls, over  atomic.Uint64
	lastC, lastO uint64
	callRate     ring
	overRate     ring
}

// ring holds the last History one-second samples, oldest first from next.
type ring struct {
	v    [History]float64
	next int
}

func (r *ring) push(x float64) {
	r.v[r.next] = x
	r.next = (r.next + 1) % History
}

func (r *ring) values() []float64 {
	out := make([]float64, 0, History)
	out = append(out, r.v[r.next:]...)
	return append(out, r.v[:r.next]...)
}

var _ engine.Observer = (*Board)(nil)

// New returns a Board with no rules: call [Board.Loaded] with the first set.
func New(opts *Options) *Board {
	b := &Board{top: map[string]*topkeys.Collector{}}
	if opts != nil {
		b.opts = *opts
	}
	b.state.Store(&state{domains: map[string]*domain{}})
	return b
}

// Loaded makes set the one the Board shows and counts a new version of the rules.
// Rates of rules that stay (by domain and ID) and the ranked keys of domains that stay
// carry over.
func (b *Board) Loaded(set *rules.Set) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.state.Load()
	st := &state{domains: map[string]*domain{}}
	for _, d := range set.Domains() {
		nd := &domain{name: d.Name, rules: map[string]*rule{}}
		c := b.top[d.Name]
		if c == nil && len(b.top) < MaxDomains {
			c = topkeys.New(&topkeys.Options{Keys: keysPerDomain, KeyBytes: maxKey})
			b.top[d.Name] = c
		}
		nd.top = c
		for _, r := range d.Rules {
			var nr *rule
			if od := old.domains[d.Name]; od != nil {
				nr = od.rules[r.ID]
			}
			if nr == nil {
				nr = &rule{id: r.ID, name: r.Name}
			}
			nd.rules[r.ID] = nr
			nd.order = append(nd.order, nr)
		}
		st.domains[d.Name] = nd
	}
	for name := range b.top { // forget the keys of domains gone
		if st.domains[name] == nil {
			delete(b.top, name)
		}
	}
	b.state.Store(st)
	b.version++
	b.loadedAt = time.Now()
	b.loadErr = ""
}

// LoadFailed records that a load of the rule files was rejected; the loaded set keeps
// serving.
func (b *Board) LoadFailed(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.loadErr, b.failedAt = err.Error(), time.Now()
}

// Decided counts the decision on one descriptor, then passes it on. It allocates
// nothing.
func (b *Board) Decided(domainName string, entries []rules.Entry, st *engine.Status, hits uint64) {
	if b.opts.Next != nil {
		b.opts.Next.Decided(domainName, entries, st, hits)
	}
	if st == nil || st.Rule == nil {
		return
	}
	d := b.state.Load().domains[domainName]
	if d == nil {
		return
	}
	over := st.Code == engine.OverLimit || st.Shadow
	if r := d.rules[st.Rule.ID]; r != nil {
		r.calls.Add(1)
		if over {
			r.over.Add(1)
		}
	}
	if d.top == nil {
		return
	}
	var buf [maxKey]byte
	e := ratelimit.Event{Rule: st.Rule.ID, Outcome: ratelimit.Allowed}
	if over {
		e.Outcome = ratelimit.Denied
	}
	// The key lives in buf for the call only, which is safe because a Collector copies
	// what it keeps of a key and retains no string it is given: a string conversion
	// would allocate on every decision.
	k := appendKey(buf[:0], entries)
	if len(k) > 0 {
		e.Key = unsafe.String(&k[0], len(k))
	}
	d.top.Observe(e)
}

// appendKey appends the descriptor as "key=value, key=value", cut at cap(b).
func appendKey(b []byte, entries []rules.Entry) []byte {
	for i, en := range entries {
		if i > 0 {
			b = appendCut(b, ", ")
		}
		b = appendCut(b, en.Key)
		b = appendCut(b, "=")
		b = appendCut(b, en.Value)
	}
	return b
}

func appendCut(b []byte, s string) []byte {
	n := min(len(s), cap(b)-len(b))
	return append(b, s[:n]...)
}

// Failed counts a request the store could not decide, then passes it on.
func (b *Board) Failed(domainName string, err error) {
	if b.opts.Next != nil {
		b.opts.Next.Failed(domainName, err)
	}
	b.failures.Add(1)
}

// Latency records the time one request took to decide, then passes it on.
func (b *Board) Latency(domainName string, d time.Duration) {
	if b.opts.Next != nil {
		b.opts.Next.Latency(domainName, d)
	}
	b.latencyN.Add(1)
	b.latencySum.Add(int64(d))
	for {
		m := b.latencyMax.Load()
		if int64(d) <= m || b.latencyMax.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Served passes on a request a front end answered; the Board shows decisions, not
// requests.
func (b *Board) Served(transport string, o engine.Outcome) {
	if b.opts.Next != nil {
		b.opts.Next.Served(transport, o)
	}
}

// Run samples the rates once a second until ctx ends.
func (b *Board) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastFail uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := b.state.Load()
		n, sum, mx := b.latencyN.Swap(0), b.latencySum.Swap(0), b.latencyMax.Swap(0)
		fails := b.failures.Load()
		b.hist.Lock()
		for _, d := range st.domains {
			for _, r := range d.order {
				c, o := r.calls.Load(), r.over.Load()
				r.callRate.push(float64(c - r.lastC))
				r.overRate.push(float64(o - r.lastO))
				r.lastC, r.lastO = c, o
			}
		}
		mean := 0.0
		if n > 0 {
			mean = float64(sum) / float64(n) / 1e3
		}
		b.lat.push(mean)
		b.maxL.push(float64(mx) / 1e3)
		b.errs.push(float64(fails - lastFail))
		lastFail = fails
		b.hist.Unlock()
	}
}

// RuleRates are one rule's rates, one sample a second, oldest first.
type RuleRates struct {
	Domain  string    `json:"domain"`
	Rule    string    `json:"rule"` // its ID
	Name    string    `json:"name,omitempty"`
	Calls   []float64 `json:"calls_per_s"`
	Over    []float64 `json:"over_per_s"`
	Total   uint64    `json:"calls_total"`
	OverAll uint64    `json:"over_total"`
}

// Snapshot is the dashboard's JSON.
type Snapshot struct {
	Time     time.Time             `json:"time"`
	Rules    RulesInfo             `json:"rules"`
	Store    StoreHealth           `json:"store"`
	Latency  LatencyInfo           `json:"latency"`
	Rates    []RuleRates           `json:"rates"`
	Top      map[string][]TopEntry `json:"top"`
	Interval string                `json:"interval"` // between samples
}

// RulesInfo is the rule set's version and the last load.
type RulesInfo struct {
	Version      uint64    `json:"version"` // counts the sets loaded since start
	LoadedAt     time.Time `json:"loaded_at"`
	LastError    string    `json:"last_error,omitempty"` // the last rejected load, if after LoadedAt
	LastFailedAt time.Time `json:"last_failed_at,omitzero"`
	Domains      int       `json:"domains"`
	Rules        int       `json:"rules"`
}

// LatencyInfo is the decision latency and the store's failures per second.
type LatencyInfo struct {
	MeanMicros []float64 `json:"mean_us"`
	MaxMicros  []float64 `json:"max_us"`
	Failures   []float64 `json:"failures_per_s"`
}

// TopEntry is a ranked key of a domain over the last minute.
type TopEntry struct {
	topkeys.KeyStats
	Total     uint64  `json:"total"`
	DenyRatio float64 `json:"deny_ratio"`
}

// Snapshot returns what the dashboard shows, with the top n limited keys of each domain.
func (b *Board) Snapshot(n int) Snapshot {
	s := Snapshot{Time: time.Now(), Top: map[string][]TopEntry{}, Interval: "1s"}
	b.mu.Lock()
	s.Rules = RulesInfo{Version: b.version, LoadedAt: b.loadedAt, LastError: b.loadErr, LastFailedAt: b.failedAt}
	b.mu.Unlock()
	if b.opts.Store != nil {
		s.Store = b.opts.Store()
	} else {
		s.Store = StoreHealth{Kind: "memory"}
	}
	st := b.state.Load()
	names := make([]string, 0, len(st.domains))
	for name := range st.domains {
		names = append(names, name)
	}
	sort.Strings(names)
	s.Rules.Domains = len(names)
	b.hist.Lock()
	for _, name := range names {
		d := st.domains[name]
		for _, r := range d.order {
			s.Rules.Rules++
			s.Rates = append(s.Rates, RuleRates{
				Domain: name, Rule: r.id, Name: r.name,
				Calls: r.callRate.values(), Over: r.overRate.values(),
				Total: r.calls.Load(), OverAll: r.over.Load(),
			})
		}
	}
	s.Latency = LatencyInfo{MeanMicros: b.lat.values(), MaxMicros: b.maxL.values(), Failures: b.errs.values()}
	b.hist.Unlock()
	for _, name := range names {
		if d := st.domains[name]; d.top != nil {
			s.Top[name] = entries(d.top.Top(n))
		}
	}
	return s
}

// Top returns the n most limited keys of a domain over the last minute, and whether the
// domain ranks keys.
func (b *Board) Top(domainName string, n int, byTraffic bool) ([]TopEntry, bool) {
	d := b.state.Load().domains[domainName]
	if d == nil || d.top == nil {
		return nil, false
	}
	if byTraffic {
		return entries(d.top.TopTraffic(n)), true
	}
	return entries(d.top.Top(n)), true
}

func entries(ks []topkeys.KeyStats) []TopEntry {
	out := make([]TopEntry, len(ks))
	for i, k := range ks {
		out[i] = TopEntry{KeyStats: k, Total: k.Total(), DenyRatio: k.DenyRatio()}
	}
	return out
}
