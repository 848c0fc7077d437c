package httplimit

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/multi"
)

// compiled is a Middleware's configuration, checked and indexed.
type compiled struct {
	set    *multi.Set
	rules  []*crule
	always []int          // rules with no pattern
	mux    *http.ServeMux // nil when no rule has a pattern and nothing is excluded
	sets   []patternSet   // indexed by the patternHandler the mux returns
	ip     *ClientIP
}

// crule is a Rule, checked, with its defaults filled in.
type crule struct {
	rule    *multi.Rule // name, class, Limiter and key prefixes
	key     KeyFunc     // nil: the client IP
	cost    CostFunc
	missing MissingKeyPolicy
	policy  atomic.Pointer[policyItem]
}

// policyItem is a rule's RateLimit-Policy item for the limit it was last written for.
type policyItem struct {
	limit ratelimit.Limit
	text  string
}

func (m *Middleware) compile() (*compiled, error) {
	m.once.Do(func() { m.compiled, m.err = m.build() })
	return m.compiled, m.err
}

func (m *Middleware) build() (*compiled, error) {
	if m.Headers > HeadersDraft03 {
		return nil, fmt.Errorf("%w: unknown HeaderStyle %d", ErrConfig, m.Headers)
	}
	rules := m.Rules
	if len(rules) == 0 {
		rules = []Rule{{Name: "default"}}
	}
	specs := make([]multi.Spec, len(rules))
	for i, r := range rules {
		specs[i] = multi.Spec{Name: r.Name, Class: r.KeyClass, Limiter: r.Limiter, Pattern: r.Pattern, ClientKey: r.Key == nil, MissingKey: uint8(r.MissingKey)}
	}
	set, err := multi.Compile(specs, multi.Options{OnStoreError: m.OnStoreError, Observer: m.Observer, Limiter: m.Limiter})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &compiled{set: set, ip: m.ClientIP.compiled()}
	rt := newRouter(c)
	for _, p := range m.Exclude {
		if err := rt.register(p, true, -1); err != nil {
			return nil, err
		}
	}
	for i, r := range rules {
		c.rules = append(c.rules, &crule{rule: &set.Rules[i], key: r.Key, cost: r.Cost, missing: r.MissingKey})
		if r.Pattern == "" {
			c.always = append(c.always, i)
		} else if err := rt.register(r.Pattern, false, i); err != nil {
			return nil, err
		}
	}
	rt.finish()
	return c, nil
}
