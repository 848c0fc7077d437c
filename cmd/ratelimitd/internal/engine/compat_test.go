package engine

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// step is one ShouldRateLimit call and the answer envoyproxy/ratelimit would give it,
// unless the case's comment says this project deliberately answers otherwise. The
// overall code it expects is OVER_LIMIT when a status is, else OK.
type step struct {
	// after is the time to let pass before the call (fake time, inside synctest).
	after  time.Duration
	domain string // "" means the case's domain
	hits   uint64 // the request's hits_addend
	descs  []Descriptor
	// statuses are the descriptor statuses, as describe renders them.
	statuses []string
}

// ask is a step of descriptor d, answered with status want.
func ask(d Descriptor, want string) step {
	return step{descs: []Descriptor{d}, statuses: []string{want}}
}

// and adds descriptor d, answered with status want.
func (s step) and(d Descriptor, want string) step {
	s.descs, s.statuses = append(s.descs, d), append(s.statuses, want)
	return s
}

// later lets d pass before the call.
func (s step) later(d time.Duration) step { s.after = d; return s }

// hitting sets the request's hits_addend.
func (s step) hitting(n uint64) step { s.hits = n; return s }

// inDomain sends the call to domain instead of the case's.
func (s step) inDomain(domain string) step { s.domain = domain; return s }

// code is the overall code the step expects.
func (s step) code() Code {
	for _, st := range s.statuses {
		if strings.HasPrefix(st, "OVER_LIMIT ") {
			return OverLimit
		}
	}
	return OK
}

// TestCompatibility replays envoyproxy/ratelimit configurations and request sequences and
// checks each answer: the overall code and, per descriptor, the code, the current limit
// (requests_per_unit, unit, name) and limit_remaining. Each case runs in a synctest bubble
// whose clock starts at 2000-01-01 00:00:00 UTC, aligned to every unit up to a day, so
// fixed windows are exact.
func TestCompatibility(t *testing.T) {
	for _, tc := range []struct {
		name   string
		domain string
		rules  string // the domain's descriptors in a rule file
		steps  []step
	}{
		{
			name:   "per-key limit counted down to over limit, then a new window",
			domain: "api",
			rules: `
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 3}
`,
			steps: []step{
				ask(desc("remote_address", "10.0.0.1"), "OK 3/MINUTE remaining 2"),
				ask(desc("remote_address", "10.0.0.1"), "OK 3/MINUTE remaining 1"),
				ask(desc("remote_address", "10.0.0.1"), "OK 3/MINUTE remaining 0"),
				ask(desc("remote_address", "10.0.0.1"), "OVER_LIMIT 3/MINUTE remaining 0"),
				// Another value of the key has a counter of its own.
				ask(desc("remote_address", "10.0.0.2"), "OK 3/MINUTE remaining 2"),
				// Still inside the first minute.
				ask(desc("remote_address", "10.0.0.1"), "OVER_LIMIT 3/MINUTE remaining 0").later(59 * time.Second),
				// The next minute is a new window.
				ask(desc("remote_address", "10.0.0.1"), "OK 3/MINUTE remaining 2").later(time.Second),
			},
		},
		{
			name:   "nested descriptors",
			domain: "edge",
			rules: `
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: second, requests_per_unit: 2}
  - key: path
    rate_limit: {unit: second, requests_per_unit: 100}
`,
			steps: []step{
				ask(desc("path", "/login", "remote_address", "1.2.3.4"), "OK 2/SECOND remaining 1"),
				ask(desc("path", "/login", "remote_address", "1.2.3.4"), "OK 2/SECOND remaining 0"),
				ask(desc("path", "/login", "remote_address", "1.2.3.4"), "OVER_LIMIT 2/SECOND remaining 0"),
				ask(desc("path", "/login", "remote_address", "5.6.7.8"), "OK 2/SECOND remaining 1"),
				// /login itself has no rate_limit: the node in the middle limits nothing.
				ask(desc("path", "/login"), "OK - remaining 0"),
				// Other paths fall to the key-only default.
				ask(desc("path", "/home"), "OK 100/SECOND remaining 99"),
				// The default has no children: a longer descriptor matches nothing.
				ask(desc("path", "/home", "remote_address", "1.2.3.4"), "OK - remaining 0"),
				// A new second is a new window.
				ask(desc("path", "/login", "remote_address", "1.2.3.4"), "OK 2/SECOND remaining 1").later(time.Second),
			},
		},
		{
			name:   "key_value before the key-only default",
			domain: "users",
			rules: `
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 5}
  - key: user
    value: vip
    rate_limit: {unit: hour, requests_per_unit: 50, name: vip}
`,
			steps: []step{
				ask(desc("user", "vip"), "OK 50/HOUR [vip] remaining 49"),
				ask(desc("user", "bob"), "OK 5/HOUR remaining 4"),
				ask(desc("user", "bob"), "OK 5/HOUR remaining 3"),
				// The default counts each value apart.
				ask(desc("user", "alice"), "OK 5/HOUR remaining 4"),
				// An unknown key matches nothing.
				ask(desc("team", "x"), "OK - remaining 0"),
			},
		},
		{
			name:   "wildcards",
			domain: "files",
			rules: `
  - key: path
    value: /api/*
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: path
    value: /api/admin*
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: path
    value: /api/v1
    rate_limit: {unit: minute, requests_per_unit: 10}
  - key: file
    value: "*"
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 2}
`,
			steps: []step{
				ask(desc("path", "/api/x"), "OK 2/MINUTE remaining 1"),
				// Without share_threshold each matched value counts apart.
				ask(desc("path", "/api/y"), "OK 2/MINUTE remaining 1"),
				// The first wildcard in file order wins over the longer one after it.
				ask(desc("path", "/api/admin/users"), "OK 2/MINUTE remaining 1"),
				// An exact value beats any wildcard.
				ask(desc("path", "/api/v1"), "OK 10/MINUTE remaining 9"),
				// Outside every prefix: nothing.
				ask(desc("path", "/static/a"), "OK - remaining 0"),
				// share_threshold: every value matching "*" shares one counter.
				ask(desc("file", "a.txt"), "OK 2/MINUTE remaining 1"),
				ask(desc("file", "b.txt"), "OK 2/MINUTE remaining 0"),
				ask(desc("file", "c.txt"), "OVER_LIMIT 2/MINUTE remaining 0"),
			},
		},
		{
			name:   "unlimited",
			domain: "api",
			rules: `
  - key: internal
    rate_limit: {unlimited: true}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			steps: []step{
				ask(desc("internal", "health"), "OK - remaining 4294967295"),
				ask(desc("internal", "health"), "OK - remaining 4294967295"),
				ask(desc("internal", "health"), "OK - remaining 4294967295").and(desc("user", "u"), "OK 1/MINUTE remaining 0"),
				ask(desc("internal", "health"), "OK - remaining 4294967295").and(desc("user", "u"), "OVER_LIMIT 1/MINUTE remaining 0"),
			},
		},
		{
			name:   "replaces",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1, name: per_user}
  - key: plan
    value: premium
    rate_limit:
      unit: minute
      requests_per_unit: 3
      name: premium
      replaces:
        - name: per_user
`,
			steps: []step{
				// per_user is replaced by premium in the same request: it is not applied.
				ask(desc("user", "u"), "OK - remaining 0").and(desc("plan", "premium"), "OK 3/MINUTE [premium] remaining 2"),
				ask(desc("plan", "premium"), "OK 3/MINUTE [premium] remaining 1").and(desc("user", "u"), "OK - remaining 0"),
				// Alone, per_user applies, and was never counted above.
				ask(desc("user", "u"), "OK 1/MINUTE [per_user] remaining 0"),
				ask(desc("user", "u"), "OVER_LIMIT 1/MINUTE [per_user] remaining 0"),
				// Replaced, it cannot deny either.
				ask(desc("user", "u"), "OK - remaining 0").and(desc("plan", "premium"), "OK 3/MINUTE [premium] remaining 0"),
			},
		},
		{
			name:   "shadow_mode",
			domain: "api",
			rules: `
  - key: bot
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 2}
`,
			steps: []step{
				ask(desc("bot", "b"), "OK 2/MINUTE remaining 1"),
				ask(desc("bot", "b"), "OK 2/MINUTE remaining 0"),
				// Over the limit, but a shadow rule never denies.
				ask(desc("bot", "b"), "OK 2/MINUTE remaining 0 shadow"),
				ask(desc("bot", "b"), "OK 2/MINUTE remaining 0 shadow"),
				ask(desc("bot", "b"), "OK 2/MINUTE remaining 1").later(time.Minute),
				// More hits than the whole limit: over, in shadow.
				ask(desc("bot", "c"), "OK 2/MINUTE remaining 0 shadow").hitting(3),
				// A deliberate difference: a shadow hit over the limit takes nothing here, so
				// one unit of the two is left. envoyproxy/ratelimit counts every hit, over the
				// limit or not, and answers remaining 0 (its count is then 4 of 2).
				ask(desc("bot", "c"), "OK 2/MINUTE remaining 1"),
			},
		},
		{
			name:   "shadow_mode with requests_per_unit 0",
			domain: "api",
			rules: `
  - key: probe
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2}
`,
			steps: []step{
				ask(desc("probe", "p"), "OK 0/MINUTE remaining 0 shadow"),
				// The request is allowed, so the other descriptor takes its unit.
				ask(desc("probe", "p"), "OK 0/MINUTE remaining 0 shadow").and(desc("user", "u"), "OK 2/MINUTE remaining 1"),
				ask(desc("user", "u"), "OK 2/MINUTE remaining 0"),
			},
		},
		{
			// Deliberate difference: the shadow rules of a request count only when its
			// enforced rules allow it. envoyproxy/ratelimit counts them in any case, so its
			// last answer below would have the shadow rule at remaining 0.
			name:   "shadow rule of a denied request is only checked",
			domain: "api",
			rules: `
  - key: bot
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			steps: []step{
				ask(desc("bot", "b"), "OK 3/MINUTE remaining 2").and(desc("user", "u"), "OK 1/MINUTE remaining 0"),
				ask(desc("bot", "b"), "OK 3/MINUTE remaining 2").and(desc("user", "u"), "OVER_LIMIT 1/MINUTE remaining 0"),
				ask(desc("bot", "b"), "OK 3/MINUTE remaining 1"),
			},
		},
		{
			name:   "no matching rule and unknown domain",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			steps: []step{
				ask(desc("tenant", "t"), "OK - remaining 0"),
				ask(desc("user", "u", "extra", "x"), "OK - remaining 0"),
				ask(desc("user", "u"), "OK - remaining 0").inDomain("elsewhere"),
				ask(desc("tenant", "t"), "OK - remaining 0").and(desc("user", "u"), "OK 1/MINUTE remaining 0"),
			},
		},
		{
			name:   "request hits_addend",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 10}
`,
			steps: []step{
				// 0 means 1.
				ask(desc("user", "u"), "OK 10/MINUTE remaining 9").hitting(0),
				ask(desc("user", "u"), "OK 10/MINUTE remaining 4").hitting(5),
				ask(desc("user", "u"), "OVER_LIMIT 10/MINUTE remaining 0").hitting(5),
				// Deliberate difference: a denied request takes nothing, so the 4 units left
				// still pass. envoyproxy/ratelimit's counter would stand at 11 after the
				// denial above, and would answer OVER_LIMIT.
				ask(desc("user", "u"), "OK 10/MINUTE remaining 0").hitting(4),
				// More hits than the whole limit: over the limit, as in envoyproxy/ratelimit.
				ask(desc("user", "v"), "OVER_LIMIT 10/MINUTE remaining 0").hitting(11),
				// Deliberate difference again: nothing was taken by the denial.
				ask(desc("user", "v"), "OK 10/MINUTE remaining 9").hitting(1),
			},
		},
		{
			name:   "descriptor hits_addend",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 3}
`,
			steps: []step{
				// 0 checks without taking.
				ask(withHits(desc("user", "u"), 0), "OK 3/MINUTE remaining 3"),
				ask(withHits(desc("user", "u"), 2), "OK 3/MINUTE remaining 1"),
				ask(withHits(desc("user", "u"), 0), "OK 3/MINUTE remaining 1"),
				// The descriptor's own hits_addend wins over the request's.
				ask(withHits(desc("user", "u"), 1), "OK 3/MINUTE remaining 0").hitting(3),
				// A check at exactly the limit is still OK.
				ask(withHits(desc("user", "u"), 0), "OK 3/MINUTE remaining 0"),
				ask(withHits(desc("user", "u"), 1), "OVER_LIMIT 3/MINUTE remaining 0"),
				// Each descriptor takes its own hits, others the request's.
				ask(withHits(desc("user", "a"), 1), "OK 3/MINUTE remaining 2").and(desc("user", "b"), "OK 3/MINUTE remaining 1").hitting(2),
			},
		},
		{
			name:   "per-descriptor limit override",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 100, name: hourly}
`,
			steps: []step{
				ask(withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE), "OK 2/MINUTE remaining 1"),
				ask(withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE), "OK 2/MINUTE remaining 0"),
				ask(withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE), "OVER_LIMIT 2/MINUTE remaining 0"),
				// An override applies to entries no rule matches too.
				ask(withOverride(desc("tenant", "t"), 1, rlsv3.RateLimitResponse_RateLimit_SECOND), "OK 1/SECOND remaining 0"),
				ask(withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE), "OK 2/MINUTE remaining 1").later(time.Minute),
			},
		},
		{
			// Deliberate difference: the descriptors of one request are all-or-nothing. When
			// one is over its limit the others take nothing, though each status still
			// reports its own code. envoyproxy/ratelimit would have counted user=u in the
			// denied request, and answered remaining 2 in the last step.
			name:   "several descriptors are all-or-nothing",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
`,
			steps: []step{
				ask(desc("user", "u"), "OK 5/MINUTE remaining 4").and(desc("ip", "1"), "OK 1/MINUTE remaining 0"),
				ask(desc("user", "u"), "OK 5/MINUTE remaining 4").and(desc("ip", "1"), "OVER_LIMIT 1/MINUTE remaining 0"),
				// requests_per_unit 0 denies every hit, and the others take nothing either.
				ask(desc("user", "u"), "OK 5/MINUTE remaining 4").and(desc("blocked", "x"), "OVER_LIMIT 0/MINUTE remaining 0"),
				ask(withHits(desc("blocked", "x"), 0), "OK 0/MINUTE remaining 0"),
				ask(desc("user", "u"), "OK 5/MINUTE remaining 3"),
			},
		},
		{
			// Deliberate difference: two descriptors of one request with the same entries
			// are one counter taking both descriptors' hits at once, and both report the
			// result. envoyproxy/ratelimit counts them one after the other: it would answer
			// remaining 4 then 3 in the first step, and OK then OVER_LIMIT in the second.
			name:   "duplicate descriptors are merged",
			domain: "api",
			rules: `
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			steps: []step{
				ask(desc("user", "u"), "OK 5/MINUTE remaining 3").and(desc("user", "u"), "OK 5/MINUTE remaining 3"),
				ask(desc("ip", "1"), "OVER_LIMIT 1/MINUTE remaining 0").and(desc("ip", "1"), "OVER_LIMIT 1/MINUTE remaining 0"),
				ask(desc("ip", "1"), "OK 1/MINUTE remaining 0"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, _ := newMemEngine(t, compile(t, "domain: "+tc.domain+"\ndescriptors:"+tc.rules), nil)
				for i, s := range tc.steps {
					time.Sleep(s.after)
					dom := s.domain
					if dom == "" {
						dom = tc.domain
					}
					resp, err := e.Decide(t.Context(), &Request{Domain: dom, Hits: s.hits, Descriptors: s.descs})
					if err != nil {
						t.Fatalf("step %d: Decide: got error %v, want none", i, err)
					}
					if resp.Code != s.code() {
						t.Errorf("step %d: overall code: got %v, want %v", i, resp.Code, s.code())
					}
					if got := describeAll(resp.Statuses); !slices.Equal(got, s.statuses) {
						t.Errorf("step %d: statuses:\ngot  %q\nwant %q", i, got, s.statuses)
					}
				}
			})
		})
	}
}
