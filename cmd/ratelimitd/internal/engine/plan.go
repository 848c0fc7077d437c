package engine

import (
	"context"
	"math"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/internal/multi"
)

// A plan is what one request asks of the store: the enforced rules, decided together and
// all-or-nothing, and the shadow rules, decided after them.
type plan struct {
	statuses []Status
	descs    []descPlan
	enforced group
	shadow   group
	// route returns the store of a rule, nil for the Engine's (see Options.Route).
	route func(*rules.Rule) ratelimit.Store
}

// descPlan is the plan of one descriptor.
type descPlan struct {
	rule *rules.Rule // the matched rule, nil for none
	hits uint64
	// req is the index of the descriptor's store request in its group (enforced, or
	// shadow when the rule is a shadow rule), or -1 when the store is not asked.
	req    int
	shadow bool
}

// group is a list of store requests. Two descriptors with the same key, algorithm and
// limit share one request. A request has at most MaxDescriptors requests.
type group struct {
	reqs    []ratelimit.Request
	results []ratelimit.Result
	// stores holds the store of each request when they are not all the Engine's (see
	// Options.Route); nil otherwise.
	stores []ratelimit.Store
	// over has bit j set when request j asked for more than its capacity (see clamp).
	over uint64
}

// clamp turns each request of g that asks for more units than its capacity, which the
// store refuses as an error, into a check, marks it over its limit (envoyproxy/ratelimit
// answers such hits with OVER_LIMIT), and reports whether there was one.
func (g *group) clamp() bool {
	for j := range g.reqs {
		if r := &g.reqs[j]; r.N > r.Limit.Capacity(r.Algorithm) {
			r.N = 0
			g.over |= 1 << j
		}
	}
	return g.over != 0
}

// add adds r, decided by st (nil for the Engine's store), or merges it into an equal
// request, and returns its index. Equal requests come from one rule, so one store.
func (g *group) add(r ratelimit.Request, st ratelimit.Store, capacity int) int {
	for j := range g.reqs {
		if q := &g.reqs[j]; q.Key == r.Key && q.Algorithm == r.Algorithm && q.Limit == r.Limit {
			q.N = int(min(int64(q.N)+int64(r.N), math.MaxInt32))
			return j
		}
	}
	if g.reqs == nil {
		g.reqs = make([]ratelimit.Request, 0, capacity)
	}
	g.addStore(st, capacity)
	g.reqs = append(g.reqs, r)
	return len(g.reqs) - 1
}

// newPlan matches every descriptor of req against set; route returns the store of a
// rule, nil for the Engine's.
func newPlan(set *rules.Set, req *Request, route func(*rules.Rule) ratelimit.Store) plan {
	n := len(req.Descriptors)
	p := plan{statuses: make([]Status, n), descs: make([]descPlan, n), route: route}
	total := 0
	for i := range req.Descriptors {
		total += len(req.Descriptors[i].Entries)
	}
	shared := make([]string, total) // per descriptor, the values Match shares
	replaced := p.match(set, req, shared)
	for i, off := 0, 0; i < n; i++ {
		entries := req.Descriptors[i].Entries
		p.planDescriptor(req.Domain, i, entries, shared[off:off+len(entries)], replaced)
		off += len(entries)
	}
	return p
}

// match finds the rule of each descriptor of req, or the rule of its override, Match
// writing the values it shares into the descriptor's part of shared, and returns the
// names of the rules the matched rules replace.
func (p *plan) match(set *rules.Set, req *Request, shared []string) map[string]bool {
	var replaced map[string]bool
	for i, off := 0, 0; i < len(req.Descriptors); i++ {
		d := &req.Descriptors[i]
		dp := &p.descs[i]
		*dp = descPlan{hits: hitsOf(req, d), req: -1}
		sh := shared[off : off+len(d.Entries) : off+len(d.Entries)]
		off += len(d.Entries)
		if d.Override != nil {
			// As in envoyproxy/ratelimit, an override applies in a known domain only.
			if set.Has(req.Domain) {
				dp.rule = overrideRule(req.Domain, d.Override)
			}
		} else {
			dp.rule = set.Match(req.Domain, d.Entries, sh)
		}
		if r := dp.rule; r != nil && len(r.Replaces) > 0 {
			if replaced == nil {
				replaced = map[string]bool{}
			}
			for _, name := range r.Replaces {
				replaced[name] = true
			}
		}
	}
	return replaced
}

// planDescriptor sets the status of descriptor i, of entries and shared values sh, from
// its rule, and adds its store request when the store is to be asked.
func (p *plan) planDescriptor(domain string, i int, entries []rules.Entry, sh []string, replaced map[string]bool) {
	dp, st := &p.descs[i], &p.statuses[i]
	r := dp.rule
	st.Code = OK
	switch {
	case r == nil:
		st.Unmatched = true
	case r.Name != "" && replaced[r.Name] && !r.Unlimited:
	case r.Unlimited:
		st.Remaining = math.MaxUint32
	case r.Limit.Rate == 0:
		st.Rule = r
		st.ResetAfter = untilWindowEnd(r.Limit.Period)
		switch {
		case dp.hits == 0:
		case r.Shadow:
			st.Shadow = true
		default:
			st.Code = OverLimit
		}
	default:
		st.Rule = r
		p.addRequest(domain, dp, entries, sh)
	}
}

// addRequest adds the store request of dp, of entries and shared values sh, to the group
// of its rule: enforced or shadow.
func (p *plan) addRequest(domain string, dp *descPlan, entries []rules.Entry, sh []string) {
	r := dp.rule
	key := storeKey(domain, entries, sh)
	if r.Source == overrideSource {
		// An override counts apart from the rule of the same entries, and from other
		// overrides of them.
		key += "|override=" + r.Limit.String()
	}
	sr := ratelimit.Request{Key: key, Algorithm: r.Algorithm, Limit: r.Limit, N: cost(dp.hits)}
	dp.shadow = r.Shadow
	if r.Shadow {
		dp.req = p.shadow.add(sr, p.route(r), len(p.descs))
	} else {
		dp.req = p.enforced.add(sr, p.route(r), len(p.descs))
	}
}

// overrideSource is the Source of the rule of a limit override.
const overrideSource = "request"

// overrideRule is the rule of a limit a request carries: a fixed window of the unit.
func overrideRule(domain string, o *Override) *rules.Rule {
	d, _ := rules.UnitDuration(o.Unit)
	d *= time.Duration(max(o.Multiplier, 1))
	return &rules.Rule{
		ID: domain + ".override", Domain: domain, Source: overrideSource,
		Unit: o.Unit, RequestsPerUnit: o.RequestsPerUnit,
		Algorithm: ratelimit.FixedWindow,
		Limit:     ratelimit.Limit{Rate: int(o.RequestsPerUnit), Period: d},
	}
}

// untilWindowEnd returns the time left in the epoch-aligned window of length period.
func untilWindowEnd(period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	now := time.Now().UnixNano()
	return period - time.Duration(now%int64(period))
}

// run asks the store: the enforced group all-or-nothing, then the shadow group, which
// takes its units, each on its own, only when the request is allowed and is otherwise
// only checked. A
// request already denied (a rule of requests_per_unit 0, or more hits than a capacity)
// only checks the enforced group.
func (e *Engine) run(ctx context.Context, p *plan) error {
	denied := p.enforced.clamp()
	for i := range p.statuses {
		if p.statuses[i].Code == OverLimit {
			denied = true
		}
	}
	allowed, err := e.takeAll(ctx, &p.enforced, !denied)
	if err != nil {
		return err
	}
	p.shadow.clamp()
	if err := e.takeEach(ctx, &p.shadow, allowed && !denied); err != nil {
		return err
	}
	p.fill(&p.enforced, false)
	p.fill(&p.shadow, true)
	return nil
}

// takeEach decides every request of g on its own, as shadow rules are: with take, each
// takes its units if it allows them; without, each is only checked.
func (e *Engine) takeEach(ctx context.Context, g *group, take bool) error {
	g.results = make([]ratelimit.Result, len(g.reqs))
	if !take {
		_, err := e.check(ctx, g)
		return err
	}
	store := e.storeFor(g)
	for i, r := range g.reqs {
		res, err := store.Take(ctx, r.Key, r.Algorithm, r.Limit, r.N)
		if err != nil {
			return err
		}
		if r.N == 0 && res.Remaining < 1 { // a clamped request: over its capacity
			res.Allowed = false
		}
		g.results[i] = res
	}
	return nil
}

// takeAll decides g: with take, all-or-nothing, as every front end decides one store's
// limits ([multi.TakeAll], with its fallback for keys a Redis Cluster cannot decide
// together); without, checks each request without taking anything.
func (e *Engine) takeAll(ctx context.Context, g *group, take bool) (bool, error) {
	g.results = make([]ratelimit.Result, len(g.reqs))
	switch {
	case len(g.reqs) == 0:
		return true, nil
	case !take:
		return e.check(ctx, g)
	case len(g.reqs) == 1:
		r := g.reqs[0]
		res, err := e.storeFor(g).Take(ctx, r.Key, r.Algorithm, r.Limit, r.N)
		g.results[0] = res
		return res.Allowed, err
	}
	return multi.TakeAll(ctx, e.storeFor(g), g.reqs, g.results)
}

// check fills g.results with what each request would get, taking nothing.
func (e *Engine) check(ctx context.Context, g *group) (bool, error) {
	return multi.Check(ctx, e.storeFor(g), g.reqs, g.results)
}

// fill copies g's results into the statuses of the descriptors they answer.
func (p *plan) fill(g *group, shadow bool) {
	for i := range p.descs {
		dp := &p.descs[i]
		if dp.req < 0 || dp.shadow != shadow {
			continue
		}
		res, st := g.results[dp.req], &p.statuses[i]
		st.Remaining = uint32(min(max(int64(res.Remaining), 0), math.MaxUint32))
		if res.Allowed && g.over&(1<<dp.req) == 0 {
			st.ResetAfter = res.ResetAfter
			continue
		}
		st.Remaining, st.ResetAfter = 0, res.RetryAfter
		if st.ResetAfter == 0 { // a check that found too few units left
			st.ResetAfter = res.ResetAfter
		}
		if st.ResetAfter == 0 { // more than the capacity, on a key at full capacity
			st.ResetAfter = untilWindowEnd(res.Limit.Period)
		}
		if shadow {
			st.Shadow = true
		} else {
			st.Code = OverLimit
		}
	}
}
