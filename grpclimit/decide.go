package grpclimit

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
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

// defaultRuleName names the rule of [Interceptor.Limiter].
const defaultRuleName = "default"

// maxRuleName is the longest rule name, in bytes.
const maxRuleName = 64

// phase says which rules a check applies.
type phase uint8

const (
	phaseCall    phase = iota // a unary call: every matching rule
	phaseOpen                 // a stream opens: the rules without PerMessage
	phaseMessage              // a message is received: the PerMessage rules
)

// compiled is an Interceptor's configuration, checked and prepared for the hot path.
type compiled struct {
	rules         []crule
	def           *crule // the default rule; nil when there is no Limiter
	exclude       []pattern
	fail          FailPolicy
	headers       HeaderMode
	obs           ratelimit.Observer
	onError       func(ctx context.Context, fullMethod string, err error)
	hasPerMessage bool
	pool          sync.Pool // of *scratch
}

// crule is a Rule, prepared.
type crule struct {
	name       string
	prefix     string // name + "\x00": the namespace of the rule's keys
	poolKey    string // the key of calls without one, under PoolMissingKey
	quoted     string // name as a structured-field string, quotes included
	lim        *ratelimit.Limiter
	store      ratelimit.Store
	batch      bool // store is a BatchStore
	group      int  // rules of one group are decided together, in one TakeAll
	methods    []pattern
	key        KeyFunc // nil: the peer's IP address, built without an intermediate string
	class      string
	cost       CostFunc
	missing    MissingKeyPolicy
	perMessage bool
}

// pattern is a method pattern: a full method name, or a service prefix ending in "/".
type pattern struct {
	s      string
	prefix bool
}

func (p pattern) match(method string) bool {
	if p.prefix {
		return strings.HasPrefix(method, p.s)
	}
	return method == p.s
}

func parsePattern(s string) (pattern, error) {
	// "/pkg.Service/" or "/pkg.Service/Method".
	svc, rest, ok := strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if !strings.HasPrefix(s, "/") || !ok || svc == "" || strings.Contains(rest, "/") {
		return pattern{}, fmt.Errorf("grpclimit: method pattern %q: want \"/pkg.Service/Method\" or \"/pkg.Service/\"", s)
	}
	return pattern{s: s, prefix: rest == ""}, nil
}

func (r *crule) matches(method string) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, p := range r.methods {
		if p.match(method) {
			return true
		}
	}
	return false
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
	c := &compiled{
		fail:    in.FailPolicy,
		headers: in.Headers,
		obs:     in.Observer,
		onError: in.OnError,
	}
	if in.FailPolicy > FailClosed {
		return nil, fmt.Errorf("grpclimit: unknown FailPolicy %d", in.FailPolicy)
	}
	if in.Headers > HeadersNone {
		return nil, fmt.Errorf("grpclimit: unknown HeaderMode %d", in.Headers)
	}
	g := grouper{}
	names := make(map[string]bool, len(in.Rules)+1)
	c.rules = make([]crule, 0, len(in.Rules))
	for i, r := range in.Rules {
		if r.Name == "" {
			r.Name = "rule" + strconv.Itoa(i)
		}
		if r.KeyClass == "" && r.Key == nil {
			r.KeyClass = "ip"
		}
		cr, err := prepare(r, &g)
		if err != nil {
			return nil, fmt.Errorf("grpclimit: rule %d: %w", i, err)
		}
		if names[cr.name] {
			return nil, fmt.Errorf("grpclimit: rule %d: name %q used twice", i, cr.name)
		}
		names[cr.name] = true
		c.hasPerMessage = c.hasPerMessage || cr.perMessage
		c.rules = append(c.rules, cr)
	}
	if in.Limiter != nil {
		if names[defaultRuleName] {
			return nil, fmt.Errorf("grpclimit: rule name %q is taken by the Limiter", defaultRuleName)
		}
		cr, err := prepare(Rule{Name: defaultRuleName, Limiter: in.Limiter, KeyClass: "ip"}, &g)
		if err != nil {
			return nil, fmt.Errorf("grpclimit: Limiter: %w", err)
		}
		c.def = &cr
	}
	for _, s := range in.Exclude {
		p, err := parsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("grpclimit: Exclude: %w", err)
		}
		c.exclude = append(c.exclude, p)
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

func (g *grouper) group(s ratelimit.Store) (group int, batch bool) {
	_, batch = s.(ratelimit.BatchStore)
	// Only pointers are compared: comparing other dynamic types may panic.
	if batch && reflect.TypeOf(s).Kind() == reflect.Pointer {
		for i, t := range g.stores {
			if t == s {
				return g.groups[i], true
			}
		}
		g.stores = append(g.stores, s)
		g.groups = append(g.groups, g.next)
	}
	g.next++
	return g.next - 1, batch
}

func prepare(r Rule, g *grouper) (crule, error) {
	if err := checkName(r.Name); err != nil {
		return crule{}, err
	}
	if r.Limiter == nil {
		return crule{}, fmt.Errorf("rule %q has no Limiter", r.Name)
	}
	store := r.Limiter.Store()
	if store == nil {
		return crule{}, fmt.Errorf("rule %q: the Limiter has no Store", r.Name)
	}
	if r.MissingKey > PoolMissingKey {
		return crule{}, fmt.Errorf("rule %q: unknown MissingKeyPolicy %d", r.Name, r.MissingKey)
	}
	cr := crule{
		name:       r.Name,
		prefix:     r.Name + "\x00",
		poolKey:    r.Name + "\x01",
		quoted:     quote(r.Name),
		lim:        r.Limiter,
		store:      store,
		key:        r.Key,
		class:      r.KeyClass,
		cost:       r.Cost,
		missing:    r.MissingKey,
		perMessage: r.PerMessage,
	}
	cr.group, cr.batch = g.group(store)
	for _, s := range r.Methods {
		p, err := parsePattern(s)
		if err != nil {
			return crule{}, fmt.Errorf("rule %q: %w", r.Name, err)
		}
		cr.methods = append(cr.methods, p)
	}
	return cr, nil
}

// checkName accepts 1 to 64 bytes of printable ASCII: names end up in metadata and labels.
func checkName(name string) error {
	if len(name) > maxRuleName {
		return fmt.Errorf("rule name %q is longer than %d bytes", name, maxRuleName)
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return fmt.Errorf("rule name %q: only printable ASCII is allowed", name)
		}
	}
	return nil
}

// quote returns s as an RFC 8941 string: quoted, with '"' and '\' escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func (c *compiled) excluded(method string) bool {
	for _, p := range c.exclude {
		if p.match(method) {
			return true
		}
	}
	return false
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

// collect appends to s the rules of phase ph that apply to method, with their keys. It
// fails with codes.InvalidArgument when a rule that rejects keyless calls finds no key.
func (c *compiled) collect(ctx context.Context, method string, ph phase, s *scratch) error {
	if c.excluded(method) {
		return nil
	}
	matched := false
	for i := range c.rules {
		r := &c.rules[i]
		if !r.matches(method) {
			continue
		}
		matched = true
		if (ph == phaseOpen && r.perMessage) || (ph == phaseMessage && !r.perMessage) {
			continue
		}
		if err := c.add(ctx, method, r, s); err != nil {
			return err
		}
	}
	if !matched && c.def != nil && ph != phaseMessage {
		return c.add(ctx, method, c.def, s)
	}
	return nil
}

// add appends r and its key for the call to s.
func (c *compiled) add(ctx context.Context, method string, r *crule, s *scratch) error {
	var key string
	if r.key == nil {
		key = peerKey(ctx, r.prefix, defaultIPv4Bits, defaultIPv6Bits)
	} else if k, ok := r.key(ctx, method); ok && k != "" {
		key = r.prefix + k
	}
	if key == "" || len(key) > ratelimit.MaxKeyLen {
		switch r.missing {
		case SkipMissingKey:
			return nil
		case PoolMissingKey:
			key = r.poolKey
		default:
			class := r.class
			if class == "" {
				class = "rate-limit"
			}
			return status.Errorf(codes.InvalidArgument, "grpclimit: rule %q: the call has no valid %s key", r.name, class)
		}
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
		if err := checkLimit(alg, limit); err != nil {
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

	best := -1 // the allowed result with the fewest units remaining
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
		case !allowed:
			worst := -1 // the denial with the longest wait
			for i := start; i < end; i++ {
				if s.res[i].Allowed {
					continue
				}
				c.event(s.wrules[i], ratelimit.Denied, latency, nil)
				if worst < 0 || s.res[i].RetryAfter > s.res[worst].RetryAfter {
					worst = i
				}
			}
			if worst < 0 { // a store that denies a batch without saying why
				worst = start
			}
			r, res := s.wrules[worst], s.res[worst]
			return verdict{md: c.metadata(r, res, true)}, denied(r, res)
		default:
			for i := start; i < end; i++ {
				c.event(s.wrules[i], ratelimit.Allowed, latency, nil)
				if best < 0 || s.res[i].Remaining < s.res[best].Remaining {
					best = i
				}
			}
		}
		start = end
	}
	if best < 0 || c.headers == HeadersNone || !allowedMD {
		return verdict{}, nil
	}
	return verdict{md: c.metadata(s.wrules[best], s.res[best], false)}, nil
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
