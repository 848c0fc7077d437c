package grpclimit

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// defaultRuleName names the implicit rule of an Interceptor without Rules.
const defaultRuleName = "default"

// maxRuleName is the longest rule name, in bytes.
const maxRuleName = 64

// phase says which rules a check applies.
type phase uint8

const (
	phaseCall    phase = iota // a unary call: every rule that applies
	phaseOpen                 // a stream opens: the rules without PerMessage
	phaseMessage              // a message is received: the PerMessage rules
)

// compiled is an Interceptor's configuration, checked and prepared for the hot path.
type compiled struct {
	rules         []crule
	always        []int                 // rules without Methods, in rule order
	patterns      map[string]patternSet // by method pattern
	fail          FailPolicy
	headers       HeaderStyle
	obs           ratelimit.Observer
	onError       func(ctx context.Context, fullMethod string, err error)
	ip            *clientIP
	hasPerMessage bool
	pool          sync.Pool // of *scratch
}

// patternSet is what one method pattern stands for: an exclusion, or rules.
type patternSet struct {
	exclude bool
	rules   []int // in rule order
}

// crule is a Rule, checked, with its defaults filled in.
type crule struct {
	index      int    // in Rules: headers list rules in this order
	name       string // validated: printable ASCII without '"' or '\'
	prefix     string // namespace of the rule's keys
	fbPrefix   string // namespace of its fallback peer-address keys
	lim        *ratelimit.Limiter
	store      ratelimit.Store
	group      int // rules of one group are decided together, in one TakeAll
	key        KeyFunc
	class      string
	cost       CostFunc
	missing    MissingKeyPolicy
	perMessage bool
}

// checkPattern validates a method pattern: "/pkg.Service/Method", "/pkg.Service/" or "/".
func checkPattern(s string) error {
	if s == "/" {
		return nil
	}
	svc, rest, ok := strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if !strings.HasPrefix(s, "/") || !ok || svc == "" || strings.Contains(rest, "/") {
		return fmt.Errorf("%w: method pattern %q: want \"/pkg.Service/Method\", \"/pkg.Service/\" or \"/\"", ErrConfig, s)
	}
	return nil
}

// scratch holds the working lists of one check. Pooled for unary calls and stream
// openings; owned by the stream for per-message checks.
type scratch struct {
	rules []*crule // the rules that apply, with their keys
	keys  []string

	// The decision's lists: the rules and requests that cost something, grouped by store.
	wrules []*crule
	reqs   []ratelimit.Request
	res    []ratelimit.Result
}

func (s *scratch) reset() {
	clear(s.rules)
	clear(s.keys)
	clear(s.wrules)
	clear(s.reqs)
	s.rules, s.keys, s.wrules, s.reqs, s.res = s.rules[:0], s.keys[:0], s.wrules[:0], s.reqs[:0], s.res[:0]
}

func (in Interceptor) compile() (*compiled, error) {
	if in.OnStoreError > FailClosed {
		return nil, fmt.Errorf("%w: unknown FailPolicy %d", ErrConfig, in.OnStoreError)
	}
	if in.Headers > HeadersNone {
		return nil, fmt.Errorf("%w: unknown HeaderStyle %d", ErrConfig, in.Headers)
	}
	c := &compiled{
		fail:     in.OnStoreError,
		headers:  in.Headers,
		obs:      in.Observer,
		onError:  in.OnError,
		patterns: make(map[string]patternSet),
		ip:       newClientIP(in.ClientIP),
	}
	for _, p := range in.Exclude {
		if err := checkPattern(p); err != nil {
			return nil, fmt.Errorf("%w (in Exclude)", err)
		}
		c.patterns[p] = patternSet{exclude: true}
	}
	rules := in.Rules
	if len(rules) == 0 {
		rules = []Rule{{Name: defaultRuleName}}
	}
	var g grouper
	names := make(map[string]bool, len(rules))
	for i, r := range rules {
		cr, err := prepare(i, r, in.Limiter, &g)
		if err != nil {
			return nil, err
		}
		if names[cr.name] {
			return nil, fmt.Errorf("%w: two rules are named %q", ErrConfig, cr.name)
		}
		names[cr.name] = true
		c.hasPerMessage = c.hasPerMessage || cr.perMessage
		c.rules = append(c.rules, cr)
		if len(r.Methods) == 0 {
			c.always = append(c.always, i)
		}
		for _, p := range r.Methods {
			if err := checkPattern(p); err != nil {
				return nil, fmt.Errorf("%w (in rule %q)", err, cr.name)
			}
			set := c.patterns[p]
			if set.exclude {
				return nil, fmt.Errorf("%w: method pattern %q is both excluded and limited", ErrConfig, p)
			}
			if n := len(set.rules); n == 0 || set.rules[n-1] != i {
				set.rules = append(set.rules, i)
			}
			c.patterns[p] = set
		}
	}
	c.pool.New = func() any { return new(scratch) }
	return c, nil
}

// grouper gives the rules of one batch store one group, and every other rule its own.
type grouper struct {
	stores []ratelimit.Store
	groups []int
	next   int
}

func (g *grouper) group(s ratelimit.Store) int {
	// Only pointers are compared: comparing other dynamic types may panic.
	if _, batch := s.(ratelimit.BatchStore); batch && reflect.TypeOf(s).Kind() == reflect.Pointer {
		for i, t := range g.stores {
			if t == s {
				return g.groups[i]
			}
		}
		g.stores = append(g.stores, s)
		g.groups = append(g.groups, g.next)
	}
	g.next++
	return g.next - 1
}

// prepare checks rule r, the i-th, and fills in its defaults.
func prepare(i int, r Rule, fallback *ratelimit.Limiter, g *grouper) (crule, error) {
	cr := crule{
		index:      i,
		name:       r.Name,
		lim:        r.Limiter,
		key:        r.Key,
		class:      r.KeyClass,
		cost:       r.Cost,
		missing:    r.MissingKey,
		perMessage: r.PerMessage,
	}
	if cr.lim == nil {
		cr.lim = fallback
	}
	if cr.class == "" && cr.key == nil {
		cr.class = "ip"
	}
	if cr.name == "" {
		cr.name = cr.class
		if len(r.Methods) > 0 {
			cr.name = strings.Join(r.Methods, ",")
		}
	}
	switch {
	case cr.name == "":
		return crule{}, fmt.Errorf("%w: rule %d has no name", ErrConfig, i)
	case len(cr.name) > maxRuleName || !validName(cr.name):
		return crule{}, fmt.Errorf("%w: rule name %q: want at most %d bytes of printable ASCII without '\"' or '\\'", ErrConfig, cr.name, maxRuleName)
	case cr.lim == nil:
		return crule{}, fmt.Errorf("%w: rule %q has no Limiter, and neither has the Interceptor", ErrConfig, cr.name)
	case cr.lim.Store() == nil:
		return crule{}, fmt.Errorf("%w: rule %q: the Limiter has no store", ErrConfig, cr.name)
	case cr.missing > MissingKeySkip:
		return crule{}, fmt.Errorf("%w: rule %q: unknown MissingKeyPolicy %d", ErrConfig, cr.name, cr.missing)
	}
	if err := checkLimit(cr.lim.Algorithm(), cr.lim.Limit()); err != nil {
		return crule{}, fmt.Errorf("%w: rule %q: %w", ErrConfig, cr.name, err)
	}
	cr.store = cr.lim.Store()
	cr.group = g.group(cr.store)
	cr.prefix = cr.name + "\x00k\x00"
	cr.fbPrefix = cr.name + "\x00i\x00"
	return cr, nil
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

// match returns the set of rules with Methods that apply to method: those of the most
// specific pattern that matches it (the method itself, then its service, then "/").
func (c *compiled) match(method string) (patternSet, bool) {
	if len(c.patterns) == 0 {
		return patternSet{}, false
	}
	if set, ok := c.patterns[method]; ok {
		return set, true
	}
	if i := strings.IndexByte(method[min(1, len(method)):], '/'); i >= 0 {
		if set, ok := c.patterns[method[:i+2]]; ok {
			return set, true
		}
	}
	set, ok := c.patterns["/"]
	return set, ok
}

// check decides a unary call or a stream's opening.
func (c *compiled) check(ctx context.Context, method string, req any, ph phase) (verdict, error) {
	s := c.pool.Get().(*scratch)
	defer func() {
		s.reset()
		c.pool.Put(s)
	}()
	if err := c.collect(ctx, method, ph, s); err != nil {
		return verdict{}, err
	}
	if len(s.rules) == 0 {
		return verdict{}, nil
	}
	return c.take(ctx, method, req, s, true)
}

// collect appends to s the rules of phase ph that apply to method, in rule order, with
// their keys. It fails with codes.InvalidArgument when a rule finds no key and its
// MissingKeyPolicy rejects the call.
func (c *compiled) collect(ctx context.Context, method string, ph phase, s *scratch) error {
	set, _ := c.match(method)
	if set.exclude {
		return nil
	}
	// Merge two ascending lists of rule indices.
	a, b := c.always, set.rules
	for len(a) > 0 || len(b) > 0 {
		var i int
		if len(b) == 0 || len(a) > 0 && a[0] < b[0] {
			i, a = a[0], a[1:]
		} else {
			i, b = b[0], b[1:]
		}
		r := &c.rules[i]
		if (ph == phaseOpen && r.perMessage) || (ph == phaseMessage && !r.perMessage) {
			continue
		}
		if err := c.add(ctx, method, r, s); err != nil {
			return err
		}
	}
	return nil
}

// add appends r and its key for the call to s, unless r's MissingKeyPolicy skips it.
func (c *compiled) add(ctx context.Context, method string, r *crule, s *scratch) error {
	var key string
	var missing error
	if r.key == nil {
		var err error
		if key, err = c.ip.key(ctx, r.prefix); err != nil {
			missing = fmt.Errorf("%w: %w", ErrNoKey, err)
		}
	} else {
		k, ok := r.key(ctx, method)
		switch {
		case !ok || k == "":
			missing = ErrNoKey
		case len(k) > maxKeyLen:
			missing = fmt.Errorf("%w: key of %d bytes, more than %d", ErrNoKey, len(k), maxKeyLen)
		default:
			key = r.prefix + k
		}
		if missing != nil && r.missing == MissingKeyFallback {
			var err error
			if key, err = c.ip.key(ctx, r.fbPrefix); err == nil {
				missing = nil
			} else {
				missing = fmt.Errorf("%w, and no client address to fall back on: %w", missing, err)
			}
		}
	}
	if missing != nil {
		if r.missing == MissingKeySkip {
			return nil
		}
		err := fmt.Errorf("grpclimit: rule %q: %w", r.name, missing)
		if c.onError != nil {
			c.onError(ctx, method, err)
		}
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.rules = append(s.rules, r)
	s.keys = append(s.keys, key)
	return nil
}

// take decides the rules collected in s for one call or message: one store decision per
// group of rules, in the order of the groups, stopping at the first denial. The verdict
// carries metadata for a denial, and for an allowed call when allowedMD is set.
func (c *compiled) take(ctx context.Context, method string, req any, s *scratch, allowedMD bool) (verdict, error) {
	s.wrules, s.reqs = s.wrules[:0], s.reqs[:0]
	for i, r := range s.rules {
		n := 1
		if r.cost != nil {
			n = r.cost(ctx, method, req)
		}
		if n == 0 {
			continue
		}
		alg, limit := r.lim.Algorithm(), r.lim.Limit()
		if n < 0 {
			if err := c.failed(ctx, method, r, 0, fmt.Errorf("%w: cost %d", ratelimit.ErrInvalidCost, n)); err != nil {
				return verdict{}, err
			}
			continue
		}
		if err := checkLimit(alg, limit); err != nil { // SetLimit may have broken it
			if err := c.failed(ctx, method, r, 0, err); err != nil {
				return verdict{}, err
			}
			continue
		}
		if capacity := limit.Capacity(alg); n > capacity {
			c.event(r, ratelimit.Denied, 0, nil)
			return verdict{}, tooCostly(r, n, capacity)
		}
		s.wrules = append(s.wrules, r)
		s.reqs = append(s.reqs, ratelimit.Request{Key: s.keys[i], Algorithm: alg, Limit: limit, N: n})
	}
	sortByGroup(s.wrules, s.reqs)
	if cap(s.res) < len(s.reqs) {
		s.res = make([]ratelimit.Result, len(s.reqs))
	}
	s.res = s.res[:len(s.reqs)]

	for start := 0; start < len(s.reqs); {
		end := start + 1
		for end < len(s.reqs) && s.wrules[end].group == s.wrules[start].group {
			end++
		}
		r0 := s.wrules[start]
		var t0 time.Time
		if c.obs != nil {
			t0 = time.Now()
		}
		var allowed bool
		var err error
		if end-start == 1 {
			q := &s.reqs[start]
			s.res[start], err = r0.store.Take(ctx, q.Key, q.Algorithm, q.Limit, q.N)
			allowed = s.res[start].Allowed
		} else {
			allowed, err = ratelimit.TakeAll(ctx, r0.store, s.reqs[start:end], s.res[start:end])
		}
		var latency time.Duration
		if c.obs != nil {
			latency = time.Since(t0)
		}
		switch {
		case err != nil:
			for _, r := range s.wrules[start:end] {
				if err := c.failed(ctx, method, r, latency, err); err != nil {
					return verdict{}, err
				}
			}
			// FailOpen: the group's rules do not apply; drop them from the decision.
			k := copy(s.wrules[start:], s.wrules[end:])
			copy(s.reqs[start:], s.reqs[end:])
			copy(s.res[start:], s.res[end:])
			s.wrules, s.reqs, s.res = s.wrules[:start+k], s.reqs[:start+k], s.res[:start+k]
			continue
		case !allowed:
			for i := start; i < end; i++ {
				if !s.res[i].Allowed {
					c.event(s.wrules[i], ratelimit.Denied, latency, nil)
				}
			}
			worst := limiting(s.res[:end], false)
			if worst < 0 { // a store that denies a batch without saying why
				worst = start
			}
			v := verdict{md: c.metadata(s.wrules[:end], s.res[:end], worst, true)}
			return v, denied(s.wrules[worst], s.res[worst])
		}
		for i := start; i < end; i++ {
			c.event(s.wrules[i], ratelimit.Allowed, latency, nil)
		}
		start = end
	}
	if len(s.res) == 0 || c.headers == HeadersNone || !allowedMD {
		return verdict{}, nil
	}
	return verdict{md: c.metadata(s.wrules, s.res, limiting(s.res, true), false)}, nil
}

// limiting returns the index of the result closest to exhaustion: on a denial, the
// denying result with the longest RetryAfter; otherwise the one with the smallest share
// of its capacity remaining, the longest ResetAfter among equals. -1 when there is none.
func limiting(res []ratelimit.Result, allowed bool) int {
	best := -1
	for i := range res {
		r := &res[i]
		if !allowed {
			if !r.Allowed && (best < 0 || r.RetryAfter > res[best].RetryAfter) {
				best = i
			}
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := &res[best]
		// Compare Remaining/capacity without dividing.
		lhs := float64(r.Remaining) * float64(max(b.Limit.Burst, 1))
		rhs := float64(b.Remaining) * float64(max(r.Limit.Burst, 1))
		if lhs < rhs || lhs == rhs && r.ResetAfter > b.ResetAfter {
			best = i
		}
	}
	return best
}

// checkLimit validates what the store would reject for the whole batch, so that one
// misconfigured rule fails alone.
func checkLimit(alg ratelimit.Algorithm, limit ratelimit.Limit) error {
	if !alg.Valid() {
		return fmt.Errorf("%w: %v", ratelimit.ErrInvalidAlgorithm, alg)
	}
	return limit.Validate()
}

// sortByGroup sorts the rules, and the requests beside them, by group, keeping the order
// within a group. The lists are short: insertion sort.
func sortByGroup(rules []*crule, reqs []ratelimit.Request) {
	for i := 1; i < len(rules); i++ {
		for j := i; j > 0 && rules[j-1].group > rules[j].group; j-- {
			rules[j-1], rules[j] = rules[j], rules[j-1]
			reqs[j-1], reqs[j] = reqs[j], reqs[j-1]
		}
	}
}

// failed reports the failure of rule r and returns the error that fails the call, or nil
// when the call goes on without r.
func (c *compiled) failed(ctx context.Context, method string, r *crule, latency time.Duration, err error) error {
	err = fmt.Errorf("grpclimit: rule %q: %w", r.name, err)
	c.event(r, ratelimit.Failed, latency, err)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	if c.onError != nil {
		c.onError(ctx, method, err)
	}
	if c.fail == FailClosed {
		return status.Error(codes.Unavailable, "grpclimit: the rate limiter is unavailable")
	}
	return nil
}

func (c *compiled) event(r *crule, o ratelimit.Outcome, latency time.Duration, err error) {
	if c.obs != nil {
		c.obs.Observe(ratelimit.Event{Rule: r.name, KeyClass: r.class, Outcome: o, Latency: latency, Err: err})
	}
}

// denied returns the status of a call denied by rule r.
func denied(r *crule, res ratelimit.Result) error {
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("grpclimit: rule %q: rate limit exceeded, retry after %v", r.name, res.RetryAfter))
	return withDetails(st,
		&errdetails.RetryInfo{RetryDelay: durationpb.New(res.RetryAfter)},
		quotaFailure(r, "rate limit exceeded"))
}

// tooCostly returns the status of a call whose cost exceeds rule r's capacity: it can
// never pass, so it carries no RetryInfo.
func tooCostly(r *crule, n, capacity int) error {
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("grpclimit: rule %q: the call costs %d units, more than the capacity of %d", r.name, n, capacity))
	return withDetails(st, quotaFailure(r, "cost exceeds capacity"))
}

func quotaFailure(r *crule, description string) *errdetails.QuotaFailure {
	return &errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
		Subject:     "rule:" + r.name,
		Description: description,
	}}}
}

// withDetails returns st with details, or st alone if they cannot be encoded.
func withDetails(st *status.Status, details ...protoadapt.MessageV1) error {
	if withd, err := st.WithDetails(details...); err == nil {
		return withd.Err()
	}
	return st.Err()
}
