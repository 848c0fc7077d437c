package multi

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/go-ratelimit/ratelimit"
)

// MaxNameLen is the longest rule name, in bytes.
const MaxNameLen = 64

// MaxKeyLen is the longest key a front end's key function may return, in bytes, before
// the rule's prefix is added. A longer key (a hostile 100 kB header) counts as missing and
// follows the rule's missing-key policy, so that clients cannot make keys expensive to
// store. It is well below [ratelimit.MaxKeyLen], the longest key a store accepts, which
// bounds what any caller may pass.
const MaxKeyLen = 4 << 10

// Spec is a rule as a front end configures it. [Compile] fills in the defaults every
// front end has: the front end's Limiter ([Options.Limiter]) when the rule has none, the
// key class "ip" for a rule keyed by the client address, and a name: the rule's pattern,
// else its class.
type Spec struct {
	Name    string             // see [CheckName]
	Class   string             // the KeyClass of observer events
	Limiter *ratelimit.Limiter // the limit, algorithm and store; its Observer hears events too

	Pattern    string // what the rule applies to, in the front end's syntax; "" for everything
	ClientKey  bool   // the rule is keyed by the client address (it has no key function)
	MissingKey uint8  // the front end's missing-key policy: fallback (0), reject (1) or skip (2)
}

// withDefaults returns sp with its defaults filled in.
func (sp Spec) withDefaults(fallback *ratelimit.Limiter) Spec {
	if sp.Limiter == nil {
		sp.Limiter = fallback
	}
	if sp.Class == "" && sp.ClientKey {
		sp.Class = "ip"
	}
	if sp.Name == "" {
		sp.Name = sp.Class
		if sp.Pattern != "" {
			sp.Name = sp.Pattern
		}
	}
	return sp
}

// Rule is a checked rule of a [Set].
type Rule struct {
	Index   int // in Set.Rules, as in the specs
	Name    string
	Class   string
	Limiter *ratelimit.Limiter

	// Prefix namespaces the rule's keys, FallbackPrefix its client-address fallback keys:
	// the name's length, the name, and k or i, as in "3:api:k:" and "3:api:i:". Rules
	// with different names never share state, and the keys stay printable.
	Prefix, FallbackPrefix string

	store ratelimit.Store
	group int                // index of the rule's store in Set.stores
	obs   ratelimit.Observer // the Limiter's Observer, nil when none or the Set's
}

// Options configures a [Set].
type Options struct {
	// OnStoreError is what a store error does to the decision: [ratelimit.FailClosed]
	// refuses it ([Unavailable]); [ratelimit.FailOpen], and the zero value
	// [ratelimit.FailLocal], go on without the failed group's rules, since a front end
	// keeps no store of its own to answer locally from. [ratelimit.FailError] is a store
	// policy and a configuration error here.
	OnStoreError ratelimit.FailPolicy

	// Observer hears about every decision of every rule. Default nil.
	Observer ratelimit.Observer

	// Limiter is the limit of every rule whose Spec has none.
	Limiter *ratelimit.Limiter
}

// Set is a compiled list of rules. It is immutable and safe for concurrent use.
type Set struct {
	Rules  []Rule
	stores []ratelimit.Store
	closed bool
	obs    ratelimit.Observer
	anyObs bool // obs or a Limiter's Observer is set: read the clock
}

// CheckName reports whether name can identify a rule: 1 to MaxNameLen bytes that can be
// written as an RFC 9651 structured-field string without escapes (printable ASCII other
// than '"' and '\').
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("rule name %q: want 1 to %d bytes of printable ASCII without '\"' or '\\'", name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("rule name %q: want 1 to %d bytes of printable ASCII without '\"' or '\\'", name, MaxNameLen)
		}
	}
	return nil
}

// namespace returns the start of every store key of the rule named name: the name's
// length, ':', the name and ':', as in "3:api:". The length makes the namespace
// collision-free whatever the name holds, and the key stays printable, so that a store's
// keys read as they are (in redis-cli --scan, say).
func namespace(name string) string {
	return strconv.Itoa(len(name)) + ":" + name + ":"
}

// Compile checks specs and returns their Set. Errors name the rule; front ends wrap
// them in their configuration error.
func Compile(specs []Spec, opts Options) (*Set, error) {
	switch opts.OnStoreError {
	case ratelimit.FailLocal, ratelimit.FailOpen, ratelimit.FailClosed:
	default:
		return nil, fmt.Errorf("OnStoreError %v: want open (the default) or closed; error is a store's policy", opts.OnStoreError)
	}
	s := &Set{Rules: make([]Rule, len(specs)), closed: opts.OnStoreError == ratelimit.FailClosed, obs: opts.Observer}
	s.anyObs = s.obs != nil
	names := make(map[string]bool, len(specs))
	for i, sp := range specs {
		sp = sp.withDefaults(opts.Limiter)
		if sp.Name == "" {
			return nil, fmt.Errorf("rule %d has no name", i)
		}
		if err := CheckName(sp.Name); err != nil {
			return nil, err
		}
		if names[sp.Name] {
			return nil, fmt.Errorf("two rules are named %q", sp.Name)
		}
		names[sp.Name] = true
		if err := checkLimiter(sp.Limiter); err != nil {
			return nil, fmt.Errorf("rule %q: %w", sp.Name, err)
		}
		if sp.MissingKey > 2 {
			return nil, fmt.Errorf("rule %q: unknown MissingKeyPolicy %d", sp.Name, sp.MissingKey)
		}
		prefix := namespace(sp.Name)
		s.Rules[i] = Rule{
			Index: i, Name: sp.Name, Class: sp.Class, Limiter: sp.Limiter,
			Prefix:         prefix + "k:",
			FallbackPrefix: prefix + "i:",
			store:          sp.Limiter.Store(),
			group:          s.groupOf(sp.Limiter.Store()),
		}
		if lo := sp.Limiter.Observer(); lo != nil && !sameObserver(lo, s.obs) {
			s.Rules[i].obs = lo
			s.anyObs = true
		}
	}
	return s, nil
}

func checkLimiter(l *ratelimit.Limiter) error {
	switch {
	case l == nil:
		return fmt.Errorf("no Limiter, and neither has the front end")
	case l.Store() == nil:
		return fmt.Errorf("the Limiter has no store")
	case !l.Algorithm().Valid():
		return ratelimit.ErrInvalidAlgorithm
	}
	return l.Limit().Validate()
}

// groupOf returns the group of store s, adding one if s is new. Stores are equal when
// their dynamic type is comparable and the values are equal; others are never equal.
func (s *Set) groupOf(st ratelimit.Store) int {
	if reflect.TypeOf(st).Comparable() {
		for i, t := range s.stores {
			if reflect.TypeOf(t).Comparable() && t == st {
				return i
			}
		}
	}
	s.stores = append(s.stores, st)
	return len(s.stores) - 1
}
