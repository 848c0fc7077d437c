package rules

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit"
)

// Unit is the unit of a limit as the Envoy RLS v3 API reports it.
type Unit = rlsv3.RateLimitResponse_RateLimit_Unit

// units are the units a file may name, with their lengths. Month is 30 days and year 365,
// as in envoyproxy/ratelimit.
var units = map[string]struct {
	unit Unit
	d    time.Duration
}{
	"SECOND": {rlsv3.RateLimitResponse_RateLimit_SECOND, time.Second},
	"MINUTE": {rlsv3.RateLimitResponse_RateLimit_MINUTE, time.Minute},
	"HOUR":   {rlsv3.RateLimitResponse_RateLimit_HOUR, time.Hour},
	"DAY":    {rlsv3.RateLimitResponse_RateLimit_DAY, 24 * time.Hour},
	"WEEK":   {rlsv3.RateLimitResponse_RateLimit_WEEK, 7 * 24 * time.Hour},
	"MONTH":  {rlsv3.RateLimitResponse_RateLimit_MONTH, 30 * 24 * time.Hour},
	"YEAR":   {rlsv3.RateLimitResponse_RateLimit_YEAR, 365 * 24 * time.Hour},
}

// UnitDuration returns the length of u, and false for UNKNOWN or an out-of-range value.
func UnitDuration(u Unit) (time.Duration, bool) {
	e, ok := units[u.String()]
	return e.d, ok
}

// unitOf returns the unit whose length is d, or UNKNOWN.
func unitOf(d time.Duration) Unit {
	for _, e := range units {
		if e.d == d {
			return e.unit
		}
	}
	return rlsv3.RateLimitResponse_RateLimit_UNKNOWN
}

// Rule is a compiled rate_limit. Rules are immutable once compiled.
type Rule struct {
	// ID is the rule's place in its tree, as envoyproxy/ratelimit names it:
	// "domain.key_value.key". It labels the rule's metrics.
	ID     string
	Domain string
	// Source is the file the rule came from, or "admin" for rules set at run time.
	Source string
	Name   string

	// Unit and RequestsPerUnit are the limit as the RLS API reports it. Unit is UNKNOWN
	// when the rule's period is not one of the units.
	Unit            Unit
	RequestsPerUnit uint32

	Algorithm ratelimit.Algorithm
	// Limit is the limit the store enforces. When RequestsPerUnit is 0 its Rate is 0 too:
	// such a rule denies every hit without asking the store.
	Limit ratelimit.Limit

	// Consistency is the rule's consistency as written; ConsistencyDefault when it names
	// none. Sync is its sync interval, 0 for the store's default.
	Consistency Consistency
	Sync        time.Duration

	Unlimited bool
	Shadow    bool
	Detailed  bool
	Replaces  []string
}

// Entry is one key and value of a request descriptor.
type Entry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Set is a compiled, immutable collection of domains. Its methods are safe for concurrent
// use; changing rules means building a new Set.
type Set struct {
	domains map[string]*domain
}

// Domain describes one loaded domain.
type Domain struct {
	Name   string
	Source string
	File   File
	Rules  []*Rule
}

type domain struct {
	Domain
	root node
}

type node struct {
	exact     map[Entry]*node
	byKey     map[string]*node
	wildcards []wildcard
	rule      *Rule
	// shared is the wildcard value ("files*") every matched value counts under when the
	// descriptor sets share_threshold; "" otherwise.
	shared string
	// line is where the node's descriptor stands in its file (0: not known), for errors.
	line int
}

type wildcard struct {
	key, prefix string
	n           *node
}

// Compile parses and checks every source and builds one Set. It reports every error it
// finds, each naming its file and, where the file has it, the line, joined.
func Compile(srcs []Source) (*Set, error) {
	s := &Set{domains: map[string]*domain{}}
	var errs []error
	for _, src := range srcs {
		f, err := Parse(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := s.domains[f.Domain]; ok && f.Domain != "" {
			errs = append(errs, located(src.Name, f.lines["domain"], fmt.Sprintf("duplicate domain '%s' in config file (first in %s)", f.Domain, prev.Source)))
			continue
		}
		d, err := compileDomain(f, src.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.domains[f.Domain] = d
	}
	return s, errors.Join(errs...)
}

// WithDomain returns a copy of s in which f replaces the domain of its name, or adds it.
func (s *Set) WithDomain(f File, source string) (*Set, error) {
	d, err := compileDomain(f, source)
	if err != nil {
		return nil, err
	}
	n := &Set{domains: maps.Clone(s.domains)}
	n.domains[f.Domain] = d
	return n, nil
}

// WithoutDomain returns a copy of s without the named domain, and whether s had it.
func (s *Set) WithoutDomain(name string) (*Set, bool) {
	if _, ok := s.domains[name]; !ok {
		return s, false
	}
	n := &Set{domains: maps.Clone(s.domains)}
	delete(n.domains, name)
	return n, true
}

// Domains returns the loaded domains sorted by name.
func (s *Set) Domains() []Domain {
	out := make([]Domain, 0, len(s.domains))
	for _, name := range slices.Sorted(maps.Keys(s.domains)) {
		out = append(out, s.domains[name].Domain)
	}
	return out
}

// Domain returns the named domain.
func (s *Set) Domain(name string) (Domain, bool) {
	d, ok := s.domains[name]
	if !ok {
		return Domain{}, false
	}
	return d.Domain, true
}

// Has reports whether the named domain is loaded.
func (s *Set) Has(name string) bool {
	_, ok := s.domains[name]
	return ok
}

// Len returns the number of rules with a rate_limit, unlimited ones included.
func (s *Set) Len() int {
	n := 0
	for _, d := range s.domains {
		n += len(d.Rules)
	}
	return n
}

// Match returns the rule for the entries of one request descriptor in domain, or nil.
// shared must have at least len(entries) elements; Match sets shared[i] to the wildcard
// value that entry i counts under when it matched a share_threshold wildcard, and leaves
// the others alone.
func (s *Set) Match(domain string, entries []Entry, shared []string) *Rule {
	d := s.domains[domain]
	if d == nil {
		return nil
	}
	n := &d.root
	for i, e := range entries {
		next := n.exact[e]
		if next == nil {
			for _, w := range n.wildcards {
				if w.key == e.Key && strings.HasPrefix(e.Value, w.prefix) {
					next = w.n
					if next.shared != "" {
						shared[i] = next.shared
					}
					break
				}
			}
		}
		if next == nil {
			next = n.byKey[e.Key]
		}
		if next == nil {
			return nil
		}
		if i == len(entries)-1 {
			return next.rule
		}
		n = next
	}
	return nil
}

func compileDomain(f File, source string) (*domain, error) {
	d := &domain{Domain: Domain{Name: f.Domain, Source: source, File: f}}
	c := compiler{source: source, domain: f.Domain}
	if f.Domain == "" {
		c.fail(f.lines["domain"], "", "config file cannot have empty domain")
	}
	c.level(&d.root, f.Domain, f.Descriptors, 1, &d.Rules)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return d, nil
}

type compiler struct {
	source, domain string
	errs           []error
}

// fail reports an error at line (0: the file as a whole) of the descriptor at (its ID, or
// "" for the file).
func (c *compiler) fail(line int, at, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if at != "" {
		msg = "descriptor '" + at + "': " + msg
	}
	c.errs = append(c.errs, located(c.source, line, msg))
}

// located returns msg as an error of source at line, "a.yaml: line 4: msg", or of the
// whole file, "a.yaml: msg", when line is 0.
func located(source string, line int, msg string) error {
	if line > 0 {
		return fmt.Errorf("%s: line %d: %s", source, line, msg)
	}
	return fmt.Errorf("%s: %s", source, msg)
}

// MaxDepth is the deepest level of nested descriptors: a request's descriptor carries at
// most this many entries, so a descriptor nested deeper could never match.
const MaxDepth = 32

// level compiles ds, the descriptors at depth (1 for the domain's own) under parent.
func (c *compiler) level(n *node, parent string, ds []Descriptor, depth int, out *[]*Rule) {
	if len(ds) > 0 && depth > MaxDepth {
		c.fail(ds[0].lines.of(""), parent, "descriptors nested deeper than %d levels, which no request can match (it carries at most %d entries)", MaxDepth, MaxDepth)
		return
	}
	for _, desc := range ds {
		if desc.Key == "" {
			c.fail(desc.lines.of("key"), parent, "descriptor has empty key")
			continue
		}
		id := parent + "." + desc.Key
		if desc.Value != "" {
			id += "_" + desc.Value
		}
		child := &node{line: desc.lines.of("key")}
		rules := out
		if !c.attach(n, desc, child, id) {
			rules = new([]*Rule) // a duplicate is checked, never served
		}
		if desc.QuotaMode {
			c.fail(desc.lines.of("quota_mode"), id, "quota_mode is not supported")
		}
		if desc.ShareThreshold {
			if !strings.HasSuffix(desc.Value, "*") {
				c.fail(desc.lines.of("share_threshold"), id, "share_threshold can only be used with wildcard values (ending with '*'), but found key '%s'", strings.TrimPrefix(id, parent+"."))
			} else {
				child.shared = desc.Value
			}
		}
		if desc.RateLimit != nil {
			if r := c.rule(desc, id); r != nil {
				child.rule = r
				*rules = append(*rules, r)
			}
		}
		c.level(child, id, desc.Descriptors, depth+1, rules)
	}
}

// attach links child under n for desc, reporting a duplicate.
func (c *compiler) attach(n *node, desc Descriptor, child *node, id string) bool {
	e := Entry{desc.Key, desc.Value}
	switch {
	case desc.Value == "":
		if first := n.byKey[desc.Key]; first != nil {
			c.duplicate(child, first, id)
			return false
		}
		if n.byKey == nil {
			n.byKey = map[string]*node{}
		}
		n.byKey[desc.Key] = child
	case n.exact[e] != nil:
		c.duplicate(child, n.exact[e], id)
		return false
	default:
		if n.exact == nil {
			n.exact = map[Entry]*node{}
		}
		n.exact[e] = child
		if strings.HasSuffix(desc.Value, "*") {
			n.wildcards = append(n.wildcards, wildcard{desc.Key, strings.TrimSuffix(desc.Value, "*"), child})
		}
	}
	return true
}

// duplicate reports the descriptor of node dup, whose ID is the one of node first.
func (c *compiler) duplicate(dup, first *node, id string) {
	if first.line > 0 {
		c.fail(dup.line, "", "duplicate descriptor composite key '%s' (first at line %d)", id, first.line)
		return
	}
	c.fail(dup.line, "", "duplicate descriptor composite key '%s'", id)
}

func (c *compiler) rule(desc Descriptor, id string) *Rule {
	rl := desc.RateLimit
	r := &Rule{
		ID: id, Domain: c.domain, Source: c.source, Name: rl.Name,
		RequestsPerUnit: rl.RequestsPerUnit, Unlimited: rl.Unlimited,
		Shadow: desc.ShadowMode, Detailed: desc.DetailedMetric,
		Algorithm: ratelimit.FixedWindow,
	}
	nerr := len(c.errs)
	for _, rep := range rl.Replaces {
		switch {
		case rep.Name == "":
			c.fail(rl.lines.of("replaces"), id, "should not have an empty replaces entry")
		case rep.Name == rl.Name:
			c.fail(rl.lines.of("replaces"), id, "replaces should not contain name of same descriptor")
		default:
			r.Replaces = append(r.Replaces, rep.Name)
		}
	}
	u, unitOK := units[strings.ToUpper(rl.Unit)]
	if rl.Unlimited {
		if unitOK || rl.Period != "" {
			c.fail(rl.lines.of("unlimited"), id, "should not specify rate limit unit when unlimited")
		}
		if rl.Algorithm != "" || rl.Burst != 0 {
			c.fail(rl.lines.of("unlimited"), id, "unlimited takes no algorithm or burst")
		}
		if rl.Consistency != "" || rl.Sync != "" {
			c.fail(rl.lines.of("unlimited"), id, "unlimited takes no consistency or sync")
		}
		return c.done(r, nerr)
	}
	var period time.Duration
	switch {
	case rl.Period != "" && rl.Unit != "":
		c.fail(rl.lines.of("period"), id, "set either unit or period, not both")
	case rl.Period != "":
		// A Go duration, or the period of ratelimit.ParseLimit: a count and a unit (s, m,
		// h, d and their words), so that "1d" means what "10/d" does.
		d, err := time.ParseDuration(rl.Period)
		if err != nil {
			var l ratelimit.Limit
			l, err = ratelimit.ParseLimit("1/" + rl.Period)
			d = l.Period
		}
		if err != nil || d <= 0 {
			c.fail(rl.lines.of("period"), id, "invalid period '%s': want a positive duration such as 90s, 5m, 2h or 1d", rl.Period)
		}
		period, r.Unit = d, unitOf(d)
	case !unitOK:
		c.fail(rl.lines.of("unit"), id, "invalid rate limit unit '%s'", rl.Unit)
	default:
		period, r.Unit = u.d, u.unit
	}
	if rl.Algorithm != "" {
		alg, err := ratelimit.ParseAlgorithm(rl.Algorithm)
		if err != nil {
			c.fail(rl.lines.of("algorithm"), id, "%v", err)
		}
		r.Algorithm = alg
	}
	switch {
	case rl.Burst < 0:
		c.fail(rl.lines.of("burst"), id, "burst %d must not be negative", rl.Burst)
	case rl.Burst > 0 && r.Algorithm != ratelimit.TokenBucket && r.Algorithm != ratelimit.LeakyBucket && r.Algorithm != ratelimit.GCRA:
		c.fail(rl.lines.of("burst"), id, "burst applies to token_bucket, leaky_bucket and gcra, not %v", r.Algorithm)
	}
	c.consistency(rl, id, r)
	r.Limit = ratelimit.Limit{Rate: int(rl.RequestsPerUnit), Period: period, Burst: rl.Burst}
	if len(c.errs) > nerr || rl.RequestsPerUnit == 0 {
		return c.done(r, nerr)
	}
	if err := r.Limit.Validate(); err != nil {
		c.fail(rl.lines.of(""), id, "%v", err)
	}
	return c.done(r, nerr)
}

// done returns r, or nil when errors were reported since nerr.
func (c *compiler) done(r *Rule, nerr int) *Rule {
	if len(c.errs) > nerr {
		return nil
	}
	return r
}
