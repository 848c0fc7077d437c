package grpclimit

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/multi"
)

// defaultRuleName names the implicit rule of an Interceptor without Rules.
const defaultRuleName = "default"

// phase says which rules a check applies.
type phase uint8

const (
	phaseCall    phase = iota // a unary call: every rule that applies
	phaseOpen                 // a stream opens: the rules without PerMessage
	phaseMessage              // a message is received: the PerMessage rules
)

// compiled is an Interceptor's configuration, checked and prepared for the hot path.
type compiled struct {
	set           *multi.Set
	rules         []crule
	always        []int                 // rules without Methods, in rule order
	patterns      map[string]patternSet // by method pattern
	headers       httplimit.HeaderStyle
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
	rule       *multi.Rule // name, class, Limiter and key prefixes
	key        KeyFunc
	cost       CostFunc
	missing    MissingKeyPolicy
	perMessage bool
}

// scratch holds the entries of one check. Pooled for unary calls and stream openings;
// owned by the stream for per-message checks.
type scratch struct {
	rules []*crule      // the rules that apply, in rule order
	es    []multi.Entry // beside them, with their keys
}

func (s *scratch) reset() {
	clear(s.rules)
	clear(s.es)
	s.rules, s.es = s.rules[:0], s.es[:0]
}

func (in Interceptor) compile() (*compiled, error) {
	if in.Headers > httplimit.HeadersDraft03 {
		return nil, fmt.Errorf("%w: unknown HeaderStyle %d", ErrConfig, in.Headers)
	}
	rules := in.Rules
	if len(rules) == 0 {
		rules = []Rule{{Name: defaultRuleName}}
	}
	specs := make([]multi.Spec, len(rules))
	for i, r := range rules {
		specs[i] = multi.Spec{Name: r.Name, Class: r.KeyClass, Limiter: r.Limiter, Pattern: strings.Join(r.Methods, ","), ClientKey: r.Key == nil, MissingKey: uint8(r.MissingKey)}
	}
	set, err := multi.Compile(specs, multi.Options{OnStoreError: in.OnStoreError, Observer: in.Observer, Limiter: in.Limiter})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &compiled{
		set:      set,
		headers:  in.Headers,
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
	for i, r := range rules {
		c.rules = append(c.rules, crule{rule: &set.Rules[i], key: r.Key, cost: r.Cost, missing: r.MissingKey, perMessage: r.PerMessage})
		c.hasPerMessage = c.hasPerMessage || r.PerMessage
		if len(r.Methods) == 0 {
			c.always = append(c.always, i)
		}
		if err := c.addMethods(i, r.Methods); err != nil {
			return nil, err
		}
	}
	c.pool.New = func() any { return new(scratch) }
	return c, nil
}

// addMethods registers rule i under its method patterns.
func (c *compiled) addMethods(i int, methods []string) error {
	for _, p := range methods {
		if err := checkPattern(p); err != nil {
			return fmt.Errorf("%w (in rule %q)", err, c.rules[i].rule.Name)
		}
		set := c.patterns[p]
		if set.exclude {
			return fmt.Errorf("%w: method pattern %q is both excluded and limited", ErrConfig, p)
		}
		if n := len(set.rules); n == 0 || set.rules[n-1] != i {
			set.rules = append(set.rules, i)
		}
		c.patterns[p] = set
	}
	return nil
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
