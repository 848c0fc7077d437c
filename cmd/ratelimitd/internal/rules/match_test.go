package rules

import (
	"slices"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit"
)

const matchRules = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1, name: user_default}
  - key: user
    value: alice
    rate_limit: {unit: minute, requests_per_unit: 2, name: user_alice}
  - key: user
    value: "al*"
    rate_limit: {unit: minute, requests_per_unit: 3, name: user_al}
  - key: user
    value: "a*"
    rate_limit: {unit: minute, requests_per_unit: 4, name: user_a}
  - key: path
    value: "*"
    rate_limit: {unit: minute, requests_per_unit: 5, name: path_any}
  - key: path
    value: /exact
    rate_limit: {unit: minute, requests_per_unit: 6, name: path_exact}
  - key: tenant
    value: t1
    descriptors:
      - key: user
        rate_limit: {unit: hour, requests_per_unit: 7, name: t1_user}
        descriptors:
          - key: method
            value: GET
            rate_limit: {unit: day, requests_per_unit: 8, name: t1_user_get}
  - key: tenant
    rate_limit: {unit: hour, requests_per_unit: 9, name: tenant_default}
  - key: file
    value: "docs-*"
    share_threshold: true
    descriptors:
      - key: op
        rate_limit: {unit: second, requests_per_unit: 10, name: docs_op}
  - key: other
    value: "x*"
    rate_limit: {unit: second, requests_per_unit: 11, name: other_x}
`

func entries(kv ...string) []Entry {
	out := make([]Entry, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Entry{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func mustCompile(t *testing.T, files ...string) *Set {
	t.Helper()
	srcs := make([]Source, len(files))
	for i, f := range files {
		srcs[i] = Source{Name: string(rune('a'+i)) + ".yaml", Data: []byte(f)}
	}
	s, err := Compile(srcs)
	if err != nil {
		t.Fatalf("Compile: got error %v, want none", err)
	}
	return s
}

// TestMatch checks envoyproxy/ratelimit's matching: a request descriptor of k entries
// walks k levels; at each level key_value first, then the first wildcard in file order,
// then the key-only default.
func TestMatch(t *testing.T) {
	s := mustCompile(t, matchRules)
	for _, tc := range []struct {
		name    string
		domain  string
		entries []Entry
		want    string // the rule's name, "" for no rule
		shared  []string
	}{
		{"key_value beats wildcard and default", "api", entries("user", "alice"), "user_alice", nil},
		{"wildcard beats default", "api", entries("user", "alfred"), "user_al", nil},
		{"first wildcard in file order wins", "api", entries("user", "al"), "user_al", nil},
		{"second wildcard when the first does not match", "api", entries("user", "anna"), "user_a", nil},
		{"default when no value or wildcard matches", "api", entries("user", "bob"), "user_default", nil},
		{"default for an empty value", "api", entries("user", ""), "user_default", nil},
		{"wildcard * matches any value", "api", entries("path", "/anything"), "path_any", nil},
		{"wildcard * matches the empty value", "api", entries("path", ""), "path_any", nil},
		{"exact value beats * declared before it", "api", entries("path", "/exact"), "path_exact", nil},
		{"wildcard prefix must match", "api", entries("other", "yes"), "", nil},
		{"wildcard prefix equal to the value", "api", entries("other", "x"), "other_x", nil},
		{"unknown key", "api", entries("nope", "x"), "", nil},
		{"nested two levels", "api", entries("tenant", "t1", "user", "u"), "t1_user", nil},
		{"nested three levels", "api", entries("tenant", "t1", "user", "u", "method", "GET"), "t1_user_get", nil},
		{"nested three levels, value not configured", "api", entries("tenant", "t1", "user", "u", "method", "POST"), "", nil},
		{"node without rate_limit in the middle", "api", entries("tenant", "t1"), "", nil},
		{"default of the first level", "api", entries("tenant", "t2"), "tenant_default", nil},
		{"request longer than the tree", "api", entries("tenant", "t2", "user", "u"), "", nil},
		{"request longer than the deepest level", "api", entries("tenant", "t1", "user", "u", "method", "GET", "x", "y"), "", nil},
		{"request shorter than the rule", "api", entries("file", "docs-1"), "", []string{"docs-*"}},
		{"entries in another order", "api", entries("user", "u", "tenant", "t1"), "", nil},
		{"share_threshold fills shared", "api", entries("file", "docs-1", "op", "read"), "docs_op", []string{"docs-*", ""}},
		{"share_threshold prefix not matched", "api", entries("file", "img-1", "op", "read"), "", nil},
		{"unknown domain", "web", entries("user", "alice"), "", nil},
		{"no entries", "api", nil, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := make([]string, len(tc.entries))
			r := s.Match(tc.domain, tc.entries, shared)
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != tc.want {
				t.Errorf("Match(%q, %v): got rule %q, want %q", tc.domain, tc.entries, got, tc.want)
			}
			want := tc.shared
			if want == nil {
				want = make([]string, len(tc.entries))
			}
			if !slices.Equal(shared, want) {
				t.Errorf("Match(%q, %v): got shared %q, want %q", tc.domain, tc.entries, shared, want)
			}
		})
	}
}

// TestMatchWildcardSharedWithoutThreshold checks that a wildcard without share_threshold
// leaves shared alone, and that Match leaves alone the entries it did not match.
func TestMatchWildcardSharedWithoutThreshold(t *testing.T) {
	s := mustCompile(t, matchRules)
	shared := []string{"keep"}
	if r := s.Match("api", entries("user", "alfred"), shared); r == nil || r.Name != "user_al" {
		t.Fatalf("Match: got %v, want user_al", r)
	}
	if shared[0] != "keep" {
		t.Errorf("shared: got %q, want %q (untouched)", shared[0], "keep")
	}
}

// TestRuleFields checks what Compile puts in a Rule: its ID, the unit as RLS reports it,
// the period, algorithm and burst extensions, and the flags.
func TestRuleFields(t *testing.T) {
	s := mustCompile(t, `
domain: ext
descriptors:
  - key: five
    rate_limit: {requests_per_unit: 10, period: 5m}
  - key: hour
    rate_limit: {requests_per_unit: 10, period: 1h}
  - key: unit
    value: upper
    rate_limit: {requests_per_unit: 10, unit: DAY}
  - key: month
    rate_limit: {requests_per_unit: 10, unit: month}
  - key: year
    rate_limit: {requests_per_unit: 10, unit: Year}
  - key: gcra
    rate_limit: {requests_per_unit: 10, unit: second, algorithm: gcra, burst: 20}
  - key: token
    rate_limit: {requests_per_unit: 10, unit: second, algorithm: token_bucket}
  - key: swc
    rate_limit: {requests_per_unit: 10, unit: second, algorithm: sliding_window_counter}
  - key: parent
    descriptors:
      - key: child
        value: v
        shadow_mode: true
        detailed_metric: true
        rate_limit:
          requests_per_unit: 0
          unit: minute
          name: child
          replaces: [{name: a}, {name: b}]
  - key: free
    rate_limit: {unlimited: true}
`)
	const (
		unknown = rlsv3.RateLimitResponse_RateLimit_UNKNOWN
		second  = rlsv3.RateLimitResponse_RateLimit_SECOND
		minute  = rlsv3.RateLimitResponse_RateLimit_MINUTE
		hour    = rlsv3.RateLimitResponse_RateLimit_HOUR
		day     = rlsv3.RateLimitResponse_RateLimit_DAY
		month   = rlsv3.RateLimitResponse_RateLimit_MONTH
		year    = rlsv3.RateLimitResponse_RateLimit_YEAR
	)
	for _, tc := range []struct {
		entries []Entry
		id      string
		unit    Unit
		alg     ratelimit.Algorithm
		limit   ratelimit.Limit
	}{
		{entries("five", "x"), "ext.five", unknown, ratelimit.FixedWindow, ratelimit.Limit{Rate: 10, Period: 5 * time.Minute}},
		{entries("hour", "x"), "ext.hour", hour, ratelimit.FixedWindow, ratelimit.Limit{Rate: 10, Period: time.Hour}},
		{entries("unit", "upper"), "ext.unit_upper", day, ratelimit.FixedWindow, ratelimit.Limit{Rate: 10, Period: 24 * time.Hour}},
		{entries("month", "x"), "ext.month", month, ratelimit.FixedWindow, ratelimit.Limit{Rate: 10, Period: 30 * 24 * time.Hour}},
		{entries("year", "x"), "ext.year", year, ratelimit.FixedWindow, ratelimit.Limit{Rate: 10, Period: 365 * 24 * time.Hour}},
		{entries("gcra", "x"), "ext.gcra", second, ratelimit.GCRA, ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 20}},
		{entries("token", "x"), "ext.token", second, ratelimit.TokenBucket, ratelimit.Limit{Rate: 10, Period: time.Second}},
		{entries("swc", "x"), "ext.swc", second, ratelimit.SlidingWindowCounter, ratelimit.Limit{Rate: 10, Period: time.Second}},
		{entries("parent", "p", "child", "v"), "ext.parent.child_v", minute, ratelimit.FixedWindow, ratelimit.Limit{Rate: 0, Period: time.Minute}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			r := s.Match("ext", tc.entries, make([]string, len(tc.entries)))
			if r == nil {
				t.Fatalf("Match(%v): got nil, want rule %s", tc.entries, tc.id)
			}
			if r.ID != tc.id || r.Domain != "ext" || r.Source != "a.yaml" {
				t.Errorf("ID, Domain, Source: got %q, %q, %q, want %q, ext, a.yaml", r.ID, r.Domain, r.Source, tc.id)
			}
			if r.Unit != tc.unit {
				t.Errorf("Unit: got %v, want %v", r.Unit, tc.unit)
			}
			if r.RequestsPerUnit != uint32(tc.limit.Rate) {
				t.Errorf("RequestsPerUnit: got %d, want %d", r.RequestsPerUnit, tc.limit.Rate)
			}
			if r.Algorithm != tc.alg {
				t.Errorf("Algorithm: got %v, want %v", r.Algorithm, tc.alg)
			}
			if r.Limit != tc.limit {
				t.Errorf("Limit: got %+v, want %+v", r.Limit, tc.limit)
			}
		})
	}

	child := s.Match("ext", entries("parent", "p", "child", "v"), make([]string, 2))
	if !child.Shadow || !child.Detailed || child.Unlimited || child.Name != "child" || !slices.Equal(child.Replaces, []string{"a", "b"}) {
		t.Errorf("child rule: got %+v, want shadow, detailed, named child, replacing a and b", child)
	}
	free := s.Match("ext", entries("free", "x"), make([]string, 1))
	if free == nil || !free.Unlimited || free.Unit != unknown || free.Limit != (ratelimit.Limit{}) {
		t.Errorf("unlimited rule: got %+v, want Unlimited with no unit and no limit", free)
	}
	if got := s.Len(); got != 10 {
		t.Errorf("Len: got %d, want 10", got)
	}
}

func TestUnitDuration(t *testing.T) {
	for _, tc := range []struct {
		unit Unit
		d    time.Duration
		ok   bool
	}{
		{rlsv3.RateLimitResponse_RateLimit_SECOND, time.Second, true},
		{rlsv3.RateLimitResponse_RateLimit_WEEK, 7 * 24 * time.Hour, true},
		{rlsv3.RateLimitResponse_RateLimit_UNKNOWN, 0, false},
		{Unit(99), 0, false},
	} {
		t.Run(tc.unit.String(), func(t *testing.T) {
			d, ok := UnitDuration(tc.unit)
			if d != tc.d || ok != tc.ok {
				t.Errorf("UnitDuration(%v): got %v, %t, want %v, %t", tc.unit, d, ok, tc.d, tc.ok)
			}
		})
	}
}

// TestSetCopies checks Domains, Domain, WithDomain and WithoutDomain, and that the copies
// leave the original Set as it was.
func TestSetCopies(t *testing.T) {
	s := mustCompile(t,
		"domain: web\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n",
		"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 2}\n",
	)
	names := func(s *Set) []string {
		var out []string
		for _, d := range s.Domains() {
			out = append(out, d.Name)
		}
		return out
	}
	if got := names(s); !slices.Equal(got, []string{"api", "web"}) {
		t.Fatalf("Domains: got %q, want [api web] (sorted)", got)
	}
	d, ok := s.Domain("web")
	if !ok || d.Source != "a.yaml" || len(d.Rules) != 1 || d.File.Domain != "web" {
		t.Errorf("Domain(web): got %+v, %t, want web from a.yaml with 1 rule", d, ok)
	}
	if _, ok := s.Domain("nope"); ok {
		t.Error("Domain(nope): got true, want false")
	}

	f, err := Parse(Source{Name: "admin", Data: []byte("domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 7}\n")})
	if err != nil {
		t.Fatalf("Parse: got error %v, want none", err)
	}
	s2, err := s.WithDomain(f, "admin")
	if err != nil {
		t.Fatalf("WithDomain: got error %v, want none", err)
	}
	if r := s2.Match("api", entries("a", "x"), make([]string, 1)); r == nil || r.RequestsPerUnit != 7 || r.Source != "admin" {
		t.Errorf("after WithDomain: got rule %+v, want 7 per second from admin", r)
	}
	if r := s.Match("api", entries("a", "x"), make([]string, 1)); r == nil || r.RequestsPerUnit != 2 {
		t.Errorf("original after WithDomain: got rule %+v, want 2 per second", r)
	}

	f.Domain = "new"
	s3, err := s2.WithDomain(f, "admin")
	if err != nil {
		t.Fatalf("WithDomain(new): got error %v, want none", err)
	}
	if got := names(s3); !slices.Equal(got, []string{"api", "new", "web"}) {
		t.Errorf("Domains after adding new: got %q, want [api new web]", got)
	}

	bad := File{Domain: "api", Descriptors: []Descriptor{{Key: "a", RateLimit: &RateLimit{Unit: "eon"}}}}
	if s4, err := s3.WithDomain(bad, "admin"); err == nil || s4 != nil {
		t.Errorf("WithDomain(bad): got %v, %v, want nil and an error", s4, err)
	} else if want := "admin: descriptor 'api.a': invalid rate limit unit 'eon'"; err.Error() != want {
		t.Errorf("WithDomain(bad): got error %q, want %q", err, want)
	}

	s5, ok := s3.WithoutDomain("web")
	if !ok {
		t.Error("WithoutDomain(web): got false, want true")
	}
	if got := names(s5); !slices.Equal(got, []string{"api", "new"}) {
		t.Errorf("Domains after WithoutDomain: got %q, want [api new]", got)
	}
	if got := names(s3); !slices.Equal(got, []string{"api", "new", "web"}) {
		t.Errorf("original after WithoutDomain: got %q, want [api new web]", got)
	}
	if s6, ok := s5.WithoutDomain("web"); ok || s6 != s5 {
		t.Errorf("WithoutDomain of a missing domain: got %p, %t, want the same Set and false", s6, ok)
	}
}
