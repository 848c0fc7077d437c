package httplimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Middleware limits the requests an HTTP handler serves. The zero value with a Limiter,
//
//	httplimit.Middleware{Limiter: lim}
//
// limits every request by its client's IP address ([ClientIP] with no trusted proxies),
// answers 429 with Retry-After and an RFC 9457 problem body when the limit is reached,
// sends the IETF RateLimit and RateLimit-Policy headers on every response, and lets
// requests through if the store fails.
//
// Set Rules for several limits, per-route limits and other keys. A request is admitted
// only if every rule that applies admits it, and a denied request consumes nothing from
// any rule (see [Middleware.Check] for the exact guarantee across stores).
//
// A Middleware is safe for concurrent use. It reads its fields once, on first use
// (Handler, Check or Validate); changing them afterwards has no effect on the
// configuration and is a data race.
type Middleware struct {
	// Limiter is the limit of the implicit rule when Rules is empty, and of every rule
	// whose own Limiter is nil.
	Limiter *ratelimit.Limiter

	// Rules are the limits applied to requests. Default (empty): one rule named
	// "default" on the client IP with Limiter, for every request.
	Rules []Rule

	// Exclude lists patterns, in [http.ServeMux] syntax, of requests no rule applies to,
	// such as "GET /healthz" or "/static/". As in routing, the most specific pattern
	// wins: a rule on "/static/big/" still applies below an excluded "/static/". An
	// excluded request gets no rate-limit headers.
	Exclude []string

	// ClientIP derives client addresses: for rules with no Key, and for the
	// MissingKeyFallback policy. Default: the connection's peer address, IPv6 by /64,
	// no trusted proxies.
	ClientIP ClientIP

	// Headers selects the rate-limit headers sent on every response a rule applied to,
	// allowed or not. Default HeadersIETF.
	Headers HeaderStyle

	// OnStoreError says what happens to a request when a store fails (a Redis outage,
	// a closed store). Default FailOpen.
	OnStoreError FailPolicy

	// DenyHandler writes the response to a request the middleware does not pass on:
	// d.Status says why (429 limited, 413 cost above capacity, 400 no key or unreadable
	// cost, 503 store failure under FailClosed, 500 misconfiguration). The rate-limit
	// headers and Retry-After are already set on w. Default [WriteProblem].
	DenyHandler func(w http.ResponseWriter, r *http.Request, d *Decision)

	// OnError, if set, hears about every error a request met (a store failure, a
	// misconfiguration, a missing key, an unreadable cost), whatever became of the
	// request. The library never logs: this is where to. Called synchronously.
	OnError func(r *http.Request, err error)

	// Observer, if set, hears about every decision of every rule, with the rule's name
	// and KeyClass (never the key): Allowed, Denied (the rules that denied), Failed (a
	// store error, whatever OnStoreError then did). A rule that would have admitted a
	// denied request, and took nothing, is not reported. Default nil: no clock reads.
	Observer ratelimit.Observer

	once     sync.Once
	compiled *compiled
	err      error
}

// Rule is one limit applied to the requests its Pattern matches.
type Rule struct {
	// Name identifies the rule in headers (RateLimit-Policy), problem bodies
	// ("violated-policies"), observer events, and store keys: rules with different names
	// never share state. It must be unique, printable ASCII, without '"' or '\'. Default:
	// KeyClass when Pattern is "", else Pattern.
	Name string

	// Limiter enforces the rule's limit with its algorithm and store. Default: the
	// Middleware's Limiter.
	Limiter *ratelimit.Limiter

	// Pattern selects the requests the rule applies to, in [http.ServeMux] syntax:
	// "GET /api/{id}", "/static/", "example.com/". Among patterned rules only those of
	// the most specific matching pattern apply, as in routing; several rules may share a
	// pattern. "/" matches what no other pattern does: it is the default rule. The empty
	// pattern (the default) applies to every request, in addition to any patterned rule.
	Pattern string

	// Key computes the key requests are limited by. Default: the client IP, per the
	// Middleware's ClientIP.
	Key KeyFunc

	// KeyClass names the kind of key, such as "ip", "user" or "api-key", for observer
	// events and metrics. Default "ip" when Key is nil, else "".
	KeyClass string

	// Cost computes how many units a request takes. Default: 1.
	Cost CostFunc

	// MissingKey says what happens when Key finds no usable key. Default
	// MissingKeyFallback.
	MissingKey MissingKeyPolicy
}

// MissingKeyPolicy says what happens to a request whose rule's [KeyFunc] fails or returns
// an empty key. No policy pools such requests into one shared bucket, where one client
// could exhaust everyone's budget.
type MissingKeyPolicy uint8

const (
	// MissingKeyFallback limits the request by its client IP instead, under the same
	// rule and limit but in a namespace of its own, so a request cannot escape a rule by
	// leaving out its header. When the client IP is unknown too, the request is
	// rejected as by MissingKeyReject. This is the default: it never leaves a rule
	// unenforced and never turns away clients that are merely anonymous.
	MissingKeyFallback MissingKeyPolicy = iota

	// MissingKeyReject answers 400 Bad Request.
	MissingKeyReject

	// MissingKeySkip exempts the request from the rule: for rules meant only for some
	// requests, such as a per-user limit next to a per-IP one that covers anonymous
	// clients.
	MissingKeySkip
)

// FailPolicy says what happens to a request when a store fails.
type FailPolicy uint8

const (
	// FailOpen lets the request through, as if the failed store's rules did not apply;
	// rules on stores that did answer are still enforced. It is the default: a rate
	// limiter protects a service, and its own outage should not become the service's
	// outage. The failure reaches OnError and the Observer.
	FailOpen FailPolicy = iota

	// FailClosed answers 503 Service Unavailable: for limits that guard money or abuse,
	// where an unlimited minute costs more than an unavailable one.
	FailClosed
)

// HeaderStyle selects the rate-limit headers a [Middleware] sends. Values are those of the
// rule closest to exhaustion (see [Decision.Limiting]); the package documentation gives
// the exact mapping.
type HeaderStyle uint8

const (
	// HeadersIETF sends the structured fields of draft-ietf-httpapi-ratelimit-headers-10:
	// RateLimit-Policy: "name";q=100;w=60 and RateLimit: "name";r=42;t=17. The default.
	HeadersIETF HeaderStyle = iota

	// HeadersLegacy sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
	// (seconds from now), the convention most existing clients read.
	HeadersLegacy

	// HeadersBoth sends both sets.
	HeadersBoth

	// HeadersNone sends no rate-limit header; Retry-After is still sent on 429.
	HeadersNone
)

// Decision is the outcome of [Middleware.Check] for one request.
type Decision struct {
	// Allowed reports whether the request may proceed: every rule that applies admitted
	// it, none applied, or a store failed and FailOpen let it through.
	Allowed bool

	// Status is the status code the Handler answers instead of calling the next handler:
	// 0 when Allowed; 429 Too Many Requests; 413 Content Too Large (a cost above a
	// rule's capacity); 400 Bad Request (no key under MissingKeyReject, or a CostFunc
	// error); 503 Service Unavailable (a store failure under FailClosed); 500 Internal
	// Server Error (an invalid configuration).
	Status int

	// RetryAfter is, on a 429, how long the client should wait: the longest RetryAfter
	// of the rules that denied the request. Exact; the Retry-After header rounds it up
	// to whole seconds. 0 otherwise.
	RetryAfter time.Duration

	// Err is the error the request met, as Check returns it; nil when none.
	Err error

	results  [inlineRules]RuleResult
	more     []RuleResult // when more than inlineRules rules apply
	n        int
	limiting int // index in Results of the rule closest to exhaustion; -1 when none
}

// inlineRules is the number of rules per request decided without allocating.
const inlineRules = 8

// RuleResult is one rule's part of a [Decision].
type RuleResult struct {
	Name      string              // the rule's Name
	KeyClass  string              // the rule's KeyClass
	Algorithm ratelimit.Algorithm // the algorithm of the rule's Limiter

	// Result is the store's answer for the rule's key. When the request was denied,
	// nothing was taken from any rule: Result.Allowed true marks rules that would have
	// admitted it, and their Remaining is what is available now.
	Result ratelimit.Result

	rule *crule // for the cached RateLimit-Policy item; nil in RuleResults built elsewhere
}

// Results returns the rules that were decided for the request, in the order of
// [Middleware.Rules]. A rule is left out when it did not apply (another pattern, an
// excluded route, MissingKeySkip), when its store failed, or when it was never asked
// because a rule on an earlier store denied the request. The slice aliases d.
func (d *Decision) Results() []RuleResult {
	if d.more != nil {
		return d.more
	}
	return d.results[:d.n]
}

// Limiting returns the rule closest to exhaustion, whose values the rate-limit headers
// carry: on a denial, the denying rule with the longest RetryAfter; otherwise the rule
// with the smallest share of its capacity remaining (the longest ResetAfter among
// equals). ok is false when no rule was decided.
func (d *Decision) Limiting() (r RuleResult, ok bool) {
	if d.limiting < 0 || d.limiting >= d.n {
		return RuleResult{}, false
	}
	return d.Results()[d.limiting], true
}

// Check decides whether r may proceed, taking the units of every rule that applies if
// they all admit it, and nothing otherwise. It is what Handler does before calling the
// next handler, without writing anything, for use in other frameworks and in tests.
//
// Rules whose Limiters share a store are decided in one atomic [ratelimit.TakeAll]: a
// request denied by one takes nothing from the others. When rules use different stores,
// each store is decided atomically in turn, in the order the stores first appear in
// Rules, stopping at the first denial. What can leak is exactly this: units taken from
// stores decided before the one that denied stay taken. Put the store of the narrowest
// limits first. A store that is not a [ratelimit.BatchStore] is decided rule by rule,
// with the same leak between its rules.
//
// Check allocates only the keys of the rules it decides, one string each, and what
// [http.ServeMux] allocates to match a pattern (for wildcards and subtree patterns); up to
// 8 rules per request are decided from fixed-size buffers.
//
// The error, also in Decision.Err, is nil when every rule was decided; otherwise it
// wraps the cause, and Decision.Status says what became of the request: [ErrNoKey] (400),
// [ratelimit.ErrInvalidCost] (413), [ratelimit.ErrClosed] or another store failure (503
// under FailClosed; under FailOpen the request is decided by the other stores' rules and
// the error is still returned), or an [ErrConfig] (500). Check does not call OnError or
// DenyHandler; it reports to the Observer.
func (m *Middleware) Check(r *http.Request) (Decision, error) {
	var d Decision
	m.decide(r, &d)
	return d, d.Err
}

// Validate checks the configuration (rule names, patterns, limits) and returns the
// error that would otherwise answer every request with 500. Call it at start-up.
func (m *Middleware) Validate() error {
	_, err := m.compile()
	return err
}

// Handler returns next guarded by m. An allowed request gets the rate-limit headers
// and goes to next; any other gets the headers, Retry-After on 429, and DenyHandler's
// response. Errors go to OnError first.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.Serve(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Serve does what [Middleware.Handler] does before the next handler: it decides r, reports
// an error to OnError, sets the rate-limit headers on w, and answers a denied request with
// the DenyHandler. It reports whether the request may proceed. Framework adapters call it
// where their chain continues or stops.
func (m *Middleware) Serve(w http.ResponseWriter, r *http.Request) (proceed bool) {
	var d Decision
	m.decide(r, &d)
	if d.Err != nil && m.OnError != nil {
		m.OnError(r, d.Err)
	}
	m.SetHeaders(w.Header(), &d)
	if d.Allowed {
		return true
	}
	m.Deny(w, r, &d)
	return false
}

// Deny answers a denied request with m's DenyHandler, [WriteProblem] when it is nil. It
// passes the handler a copy of d, so that only denials put a Decision on the heap.
func (m *Middleware) Deny(w http.ResponseWriter, r *http.Request, d *Decision) {
	deny := m.DenyHandler
	if deny == nil {
		deny = WriteProblem
	}
	dd := new(Decision)
	*dd = *d
	deny(w, r, dd)
}

// compiled is a Middleware's configuration, checked and indexed.
type compiled struct {
	rules  []*crule
	always []int          // rules with no pattern
	mux    *http.ServeMux // nil when no rule has a pattern and nothing is excluded
	sets   []patternSet   // indexed by the patternHandler the mux returns
	stores []ratelimit.Store
	ip     *ClientIP
}

// crule is a Rule, checked, with its defaults filled in.
type crule struct {
	name, class string
	lim         *ratelimit.Limiter
	key         KeyFunc // nil: the client IP
	cost        CostFunc
	missing     MissingKeyPolicy
	prefix      string // namespace of the rule's keys
	fbPrefix    string // namespace of its fallback client-IP keys
	store       int    // index in compiled.stores
	policy      atomic.Pointer[policyItem]
}

// policyItem is a rule's RateLimit-Policy item for the limit it was last written for.
type policyItem struct {
	limit ratelimit.Limit
	text  string
}

// patternSet is what one registered pattern stands for.
type patternSet struct {
	exclude bool
	rules   []int
}

// patternHandler is registered on the matching mux; its value indexes compiled.sets.
type patternHandler int

func (patternHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

func (m *Middleware) compile() (*compiled, error) {
	m.once.Do(func() { m.compiled, m.err = m.build() })
	return m.compiled, m.err
}

// ErrConfig is wrapped by every error a Middleware's configuration causes.
var ErrConfig = errors.New("httplimit: invalid configuration")

func (m *Middleware) build() (*compiled, error) {
	rules := m.Rules
	if len(rules) == 0 {
		rules = []Rule{{Name: "default"}}
	}
	c := &compiled{ip: m.ClientIP.compiled()}
	names := map[string]bool{}
	patterns := map[string]int{}
	register := func(pattern string, exclude bool, rule int) (err error) {
		i, ok := patterns[pattern]
		if !ok {
			if c.mux == nil {
				c.mux = http.NewServeMux()
			}
			// ServeMux reports invalid and conflicting patterns only by panicking;
			// turn that into a configuration error, once, here.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("%w: pattern %q: %v", ErrConfig, pattern, p)
				}
			}()
			i = len(c.sets)
			c.sets = append(c.sets, patternSet{exclude: exclude})
			patterns[pattern] = i
			c.mux.Handle(pattern, patternHandler(i))
		}
		if c.sets[i].exclude != exclude {
			return fmt.Errorf("%w: pattern %q is both excluded and limited", ErrConfig, pattern)
		}
		if !exclude {
			c.sets[i].rules = append(c.sets[i].rules, rule)
		}
		return nil
	}
	for _, p := range m.Exclude {
		if err := register(p, true, -1); err != nil {
			return nil, err
		}
	}
	for i, r := range rules {
		cr := &crule{lim: r.Limiter, key: r.Key, cost: r.Cost, missing: r.MissingKey, class: r.KeyClass, name: r.Name}
		if cr.lim == nil {
			cr.lim = m.Limiter
		}
		if cr.class == "" && cr.key == nil {
			cr.class = "ip"
		}
		if cr.name == "" {
			cr.name = cr.class
			if r.Pattern != "" {
				cr.name = r.Pattern
			}
		}
		switch {
		case cr.name == "":
			return nil, fmt.Errorf("%w: rule %d has no name", ErrConfig, i)
		case !validName(cr.name):
			return nil, fmt.Errorf("%w: rule name %q: want printable ASCII without '\"' or '\\'", ErrConfig, cr.name)
		case names[cr.name]:
			return nil, fmt.Errorf("%w: two rules are named %q", ErrConfig, cr.name)
		case cr.lim == nil:
			return nil, fmt.Errorf("%w: rule %q has no Limiter, and neither has the Middleware", ErrConfig, cr.name)
		case cr.lim.Store() == nil:
			return nil, fmt.Errorf("%w: rule %q: the Limiter has no store", ErrConfig, cr.name)
		case !cr.lim.Algorithm().Valid():
			return nil, fmt.Errorf("%w: rule %q: %w", ErrConfig, cr.name, ratelimit.ErrInvalidAlgorithm)
		case cr.missing > MissingKeySkip:
			return nil, fmt.Errorf("%w: rule %q: unknown MissingKeyPolicy %d", ErrConfig, cr.name, cr.missing)
		}
		if err := cr.lim.Limit().Validate(); err != nil {
			return nil, fmt.Errorf("%w: rule %q: %w", ErrConfig, cr.name, err)
		}
		names[cr.name] = true
		cr.prefix = cr.name + "\x00k\x00"
		cr.fbPrefix = cr.name + "\x00i\x00"
		cr.store = c.storeIndex(cr.lim.Store())
		c.rules = append(c.rules, cr)
		if r.Pattern == "" {
			c.always = append(c.always, i)
		} else if err := register(r.Pattern, false, i); err != nil {
			return nil, err
		}
	}
	if c.mux != nil {
		// A catch-all makes every answer of the mux either one of ours or a redirect
		// (to a clean path, or to add a trailing slash), never "not found" or "method
		// not allowed".
		if _, ok := patterns["/"]; !ok {
			i := len(c.sets)
			c.sets = append(c.sets, patternSet{})
			c.mux.Handle("/", patternHandler(i))
		}
	}
	if m.Headers > HeadersNone {
		return nil, fmt.Errorf("%w: unknown HeaderStyle %d", ErrConfig, m.Headers)
	}
	if m.OnStoreError > FailClosed {
		return nil, fmt.Errorf("%w: unknown FailPolicy %d", ErrConfig, m.OnStoreError)
	}
	return c, nil
}

// checkPattern reports whether p is a valid ServeMux pattern.
func checkPattern(p string) (err error) {
	// ServeMux reports invalid patterns only by panicking.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("invalid pattern %q: %v", p, v)
		}
	}()
	http.NewServeMux().Handle(p, patternHandler(0))
	return nil
}

// storeIndex returns the index of s in c.stores, adding it if new. Stores of types that
// cannot be compared are never considered equal.
func (c *compiled) storeIndex(s ratelimit.Store) int {
	if reflect.TypeOf(s).Comparable() {
		for i, t := range c.stores {
			if reflect.TypeOf(t).Comparable() && t == s {
				return i
			}
		}
	}
	c.stores = append(c.stores, s)
	return len(c.stores) - 1
}

// validName reports whether s can be written as a structured-field string (RFC 9651)
// without escapes.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// match appends to dst the indices of the rules that apply to r, in rule order, and
// reports false when r is excluded.
func (c *compiled) match(dst []int, r *http.Request) ([]int, bool) {
	var set []int
	if c.mux != nil {
		s, ok := c.lookup(r)
		if ok && s.exclude {
			return dst, false
		}
		set = s.rules
	}
	// Merge two ascending lists.
	a, b := c.always, set
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0] < b[0] {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	return dst, true
}

// lookup returns the pattern set the mux routes r to. A request the mux would redirect
// (an unclean path, a missing trailing slash) gets the set of where it would be sent,
// so spelling a path differently cannot escape its rules.
func (c *compiled) lookup(r *http.Request) (patternSet, bool) {
	h, _ := c.mux.Handler(r)
	if i, ok := h.(patternHandler); ok {
		return c.sets[i], true
	}
	if r.Method == http.MethodConnect {
		return patternSet{}, false
	}
	p := cleanPath(r.URL.Path)
	for _, try := range [2]string{p, p + "/"} {
		u := *r.URL
		u.Path, u.RawPath = try, ""
		r2 := *r
		r2.URL = &u
		if h, _ := c.mux.Handler(&r2); h != nil {
			if i, ok := h.(patternHandler); ok {
				return c.sets[i], true
			}
		}
	}
	return patternSet{}, false
}

// cleanPath returns p with . and .. elements and repeated slashes removed, rooted, with
// its trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// scratch holds the buffers of a decision on several rules, reused through a pool so
// that deciding allocates nothing but keys.
type scratch struct {
	reqs [inlineRules]ratelimit.Request
	res  [inlineRules]ratelimit.Result
	pos  [inlineRules]int // position in the decision of each request
	done [inlineRules]bool
}

// ipCache holds the client IP key of a request, computed at most once.
type ipCache struct {
	have bool
	n    int // length of the key in buf
	err  error
	buf  [64]byte // holds any IP key: at most 43 bytes
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// decide fills d for r.
func (m *Middleware) decide(r *http.Request, d *Decision) {
	d.limiting = -1
	c, err := m.compile()
	if err != nil {
		d.Status, d.Err = http.StatusInternalServerError, err
		return
	}
	var ib [inlineRules]int
	idx, ok := c.match(ib[:0], r)
	if !ok || len(idx) == 0 {
		d.Allowed = true
		return
	}
	var ip ipCache
	if len(idx) == 1 {
		m.decideOne(c, c.rules[idx[0]], r, d, &ip)
		return
	}

	s := scratchPool.Get().(*scratch)
	defer func() {
		clear(s.reqs[:min(len(idx), inlineRules)]) // drop key strings
		scratchPool.Put(s)
	}()
	many := len(idx) > inlineRules
	var reqs []ratelimit.Request
	var res []ratelimit.Result
	var pos []int
	var done []bool
	if many {
		reqs, res = make([]ratelimit.Request, 0, len(idx)), make([]ratelimit.Result, len(idx))
		pos, done = make([]int, 0, len(idx)), make([]bool, len(idx))
		d.more = make([]RuleResult, len(idx))
	} else {
		reqs, res, pos, done = s.reqs[:0], s.res[:len(idx)], s.pos[:0], s.done[:len(idx)]
		clear(done)
	}
	results := d.results[:]
	if many {
		results = d.more
	}

	// Keys and costs.
	ruleOf := func(j int) *crule { return c.rules[idx[j]] }
	for j := range idx {
		cr := ruleOf(j)
		q, skip, status, err := m.prepare(c, cr, r, &ip)
		if err != nil {
			d.Status, d.Err = status, err
			return
		}
		if skip {
			continue
		}
		reqs = append(reqs, q)
		pos = append(pos, j)
		results[j] = RuleResult{Name: cr.name, KeyClass: cr.class, Algorithm: q.Algorithm, rule: cr}
	}
	if len(reqs) == 0 {
		d.Allowed = true
		return
	}

	// Decide store by store, in the order stores first appear in the rules.
	ctx := r.Context()
	allowed := true
	for st := range c.stores {
		// Gather this store's requests to the front of a window of reqs.
		var batch [inlineRules]int
		sel := batch[:0]
		for k := range reqs {
			if ruleOf(pos[k]).store == st {
				sel = append(sel, k)
			}
		}
		if len(sel) == 0 {
			continue
		}
		store := c.stores[st]
		var start time.Time
		if m.Observer != nil {
			start = time.Now()
		}
		var ok bool
		var err error
		if len(sel) == 1 {
			q := &reqs[sel[0]]
			res[sel[0]], err = store.Take(ctx, q.Key, q.Algorithm, q.Limit, q.N)
			ok = res[sel[0]].Allowed
		} else if _, batchable := store.(ratelimit.BatchStore); batchable && contiguous(sel) {
			lo, hi := sel[0], sel[len(sel)-1]+1
			ok, err = ratelimit.TakeAll(ctx, store, reqs[lo:hi], res[lo:hi])
		} else if batchable {
			ok, err = takeGathered(ctx, store, reqs, res, sel)
		} else {
			ok = true
			for i, k := range sel {
				q := &reqs[k]
				if res[k], err = store.Take(ctx, q.Key, q.Algorithm, q.Limit, q.N); err != nil || !res[k].Allowed {
					ok = false
					sel = sel[:i+1] // the rules after it were not asked
					break
				}
			}
		}
		if m.Observer != nil {
			m.report(c, reqs, res, pos, idx, sel, ok, err, time.Since(start))
		}
		if err != nil {
			d.Err = fmt.Errorf("httplimit: rule %q: %w", ruleOf(pos[sel[0]]).name, err)
			if m.OnStoreError == FailClosed {
				d.Status = http.StatusServiceUnavailable
				return
			}
			continue // FailOpen: this store's rules do not apply
		}
		for _, k := range sel {
			done[k] = true
		}
		if !ok {
			allowed = false
			break
		}
	}

	// Compact the decided rules into d, in rule order.
	out := 0
	for k := range reqs {
		if !done[k] {
			continue
		}
		rr := results[pos[k]]
		rr.Result = res[k]
		results[out] = rr
		out++
	}
	d.n = out
	if many {
		d.more = d.more[:out]
	}
	d.Allowed = allowed
	if !allowed {
		d.Status = http.StatusTooManyRequests
	}
	d.limiting = limitingRule(results[:out], allowed)
	if !allowed {
		d.RetryAfter = results[d.limiting].Result.RetryAfter
	}
}

// prepare computes the request of rule cr for r: its key and cost. skip reports that
// the rule does not apply (MissingKeySkip); otherwise a non-nil err rejects the request
// with status.
func (m *Middleware) prepare(c *compiled, cr *crule, r *http.Request, ip *ipCache) (q ratelimit.Request, skip bool, status int, err error) {
	key, skip, err := m.key(c, cr, r, ip)
	if err != nil {
		return q, false, http.StatusBadRequest, fmt.Errorf("httplimit: rule %q: %w", cr.name, err)
	}
	if skip {
		return q, true, 0, nil
	}
	cost := 1
	if cr.cost != nil {
		if cost, err = cr.cost(r); err != nil {
			return q, false, http.StatusBadRequest, fmt.Errorf("httplimit: rule %q: cost: %w", cr.name, err)
		}
	}
	limit := cr.lim.Limit()
	alg := cr.lim.Algorithm()
	switch {
	case cost < 0:
		return q, false, http.StatusInternalServerError, fmt.Errorf("%w: rule %q: %w: cost %d", ErrConfig, cr.name, ratelimit.ErrInvalidCost, cost)
	case cost > limit.Capacity(alg):
		return q, false, http.StatusRequestEntityTooLarge, fmt.Errorf("httplimit: rule %q: %w: cost %d exceeds the capacity %d", cr.name, ratelimit.ErrInvalidCost, cost, limit.Capacity(alg))
	}
	return ratelimit.Request{Key: key, Algorithm: alg, Limit: limit, N: cost}, false, 0, nil
}

// decideOne fills d for a request only rule cr applies to: the common case, decided
// with one Take and no pooled buffers.
func (m *Middleware) decideOne(c *compiled, cr *crule, r *http.Request, d *Decision, ip *ipCache) {
	q, skip, status, err := m.prepare(c, cr, r, ip)
	if err != nil {
		d.Status, d.Err = status, err
		return
	}
	if skip {
		d.Allowed = true
		return
	}
	var start time.Time
	if m.Observer != nil {
		start = time.Now()
	}
	res, err := c.stores[cr.store].Take(r.Context(), q.Key, q.Algorithm, q.Limit, q.N)
	if m.Observer != nil {
		e := ratelimit.Event{Rule: cr.name, KeyClass: cr.class, Latency: time.Since(start), Err: err, Outcome: ratelimit.Allowed}
		switch {
		case err != nil:
			e.Outcome = ratelimit.Failed
		case !res.Allowed:
			e.Outcome = ratelimit.Denied
		}
		m.Observer.Observe(e)
	}
	if err != nil {
		d.Err = fmt.Errorf("httplimit: rule %q: %w", cr.name, err)
		if m.OnStoreError == FailClosed {
			d.Status = http.StatusServiceUnavailable
		} else {
			d.Allowed = true
		}
		return
	}
	d.results[0] = RuleResult{Name: cr.name, KeyClass: cr.class, Algorithm: q.Algorithm, Result: res, rule: cr}
	d.n, d.limiting = 1, 0
	d.Allowed = res.Allowed
	if !res.Allowed {
		d.Status, d.RetryAfter = http.StatusTooManyRequests, res.RetryAfter
	}
}

// contiguous reports whether sel is a run of consecutive indices.
func contiguous(sel []int) bool { return sel[len(sel)-1]-sel[0] == len(sel)-1 }

// takeGathered runs TakeAll on the requests sel picks out of reqs, copying them to one
// contiguous run and the results back.
func takeGathered(ctx context.Context, store ratelimit.Store, reqs []ratelimit.Request, res []ratelimit.Result, sel []int) (bool, error) {
	var qb [inlineRules]ratelimit.Request
	var rb [inlineRules]ratelimit.Result
	q, rs := qb[:0], rb[:len(sel)]
	if len(sel) > inlineRules {
		q, rs = make([]ratelimit.Request, 0, len(sel)), make([]ratelimit.Result, len(sel))
	}
	for _, k := range sel {
		q = append(q, reqs[k])
	}
	ok, err := ratelimit.TakeAll(ctx, store, q, rs)
	for i, k := range sel {
		res[k] = rs[i]
	}
	return ok, err
}

// limitingRule returns the index of the rule closest to exhaustion in rs, or -1.
func limitingRule(rs []RuleResult, allowed bool) int {
	best := -1
	for i := range rs {
		r := &rs[i].Result
		if !allowed {
			if r.Allowed {
				continue
			}
			if best < 0 || r.RetryAfter > rs[best].Result.RetryAfter {
				best = i
			}
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := &rs[best].Result
		// Compare Remaining/capacity without dividing: r.Rem·b.Cap vs b.Rem·r.Cap.
		lhs := float64(r.Remaining) * float64(max(b.Limit.Burst, 1))
		rhs := float64(b.Remaining) * float64(max(r.Limit.Burst, 1))
		if lhs < rhs || lhs == rhs && r.ResetAfter > b.ResetAfter {
			best = i
		}
	}
	return best
}

// key returns the namespaced key of rule cr for r, or skip when MissingKeySkip applies.
// err is set when the request must be rejected for want of a key.
func (m *Middleware) key(c *compiled, cr *crule, r *http.Request, ip *ipCache) (key string, skip bool, err error) {
	if cr.key != nil {
		k, kerr := cr.key(r)
		if kerr == nil && k != "" && len(k) <= maxKeyLen {
			return cr.prefix + k, false, nil
		}
		if kerr == nil {
			kerr = fmt.Errorf("%w: key of %d bytes", ErrNoKey, len(k))
		}
		switch cr.missing {
		case MissingKeySkip:
			return "", true, nil
		case MissingKeyReject:
			return "", false, kerr
		}
		a, ierr := ip.get(c, r)
		if ierr != nil {
			return "", false, fmt.Errorf("%w; and for the fallback: %w", kerr, ierr)
		}
		return cr.fbPrefix + string(a), false, nil
	}
	a, ierr := ip.get(c, r)
	if ierr != nil {
		if cr.missing == MissingKeySkip {
			return "", true, nil
		}
		return "", false, ierr
	}
	var buf [128]byte
	b := append(buf[:0], cr.prefix...)
	b = append(b, a...)
	return string(b), false, nil
}

// get returns the client IP key of r.
func (ip *ipCache) get(c *compiled, r *http.Request) ([]byte, error) {
	if !ip.have {
		// Keep only a length: a slice of its own buf would make ip escape to the heap.
		b, err := c.ip.appendKey(ip.buf[:0], r)
		ip.n, ip.err, ip.have = copy(ip.buf[:], b), err, true
	}
	return ip.buf[:ip.n], ip.err
}

// report tells the Observer about the decision of one store's rules.
func (m *Middleware) report(c *compiled, reqs []ratelimit.Request, res []ratelimit.Result, pos, idx, sel []int, ok bool, err error, latency time.Duration) {
	for _, k := range sel {
		cr := c.rules[idx[pos[k]]]
		e := ratelimit.Event{Rule: cr.name, KeyClass: cr.class, Latency: latency, Err: err}
		switch {
		case err != nil:
			e.Outcome = ratelimit.Failed
		case ok:
			e.Outcome = ratelimit.Allowed
		case !res[k].Allowed:
			e.Outcome = ratelimit.Denied
		default:
			continue // would have admitted; took nothing
		}
		m.Observer.Observe(e)
	}
}

// WriteProblem is the default DenyHandler. It answers d.Status with an RFC 9457
// application/problem+json body. A 429 uses the problem type
// https://iana.org/assignments/http-problem-types#quota-exceeded with the
// "violated-policies" member listing the rules that denied the request; other statuses
// use about:blank with a detail naming the cause.
func WriteProblem(w http.ResponseWriter, r *http.Request, d *Decision) {
	status := d.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(problemBody(status, d))
}

// problemURL is the IETF problem type for a request over its quota.
const problemURL = "https://iana.org/assignments/http-problem-types#quota-exceeded"

func problemBody(status int, d *Decision) []byte {
	b := make([]byte, 0, 256)
	if status == http.StatusTooManyRequests {
		b = append(b, `{"type":"`+problemURL+`","title":"Request cannot be satisfied as assigned quota has been exceeded","status":429,"violated-policies":[`...)
		first := true
		for _, rr := range d.Results() {
			if rr.Result.Allowed {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, rr.Name)
		}
		b = append(b, "]}\n"...)
		return b
	}
	b = append(b, `{"type":"about:blank","title":`...)
	b = appendJSONString(b, http.StatusText(status))
	b = append(b, `,"status":`...)
	b = fmt.Appendf(b, "%d", status)
	if d.Err != nil && status != http.StatusInternalServerError && status != http.StatusServiceUnavailable {
		// Client errors explain themselves; server-side causes stay in OnError.
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, d.Err.Error())
	}
	b = append(b, "}\n"...)
	return b
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
