package engine

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// step is one ShouldRateLimit call and the answer envoyproxy/ratelimit would give it,
// unless the case's comment says this project deliberately answers otherwise.
type step struct {
	// after is the time to let pass before the call (fake time, inside synctest).
	after  time.Duration
	domain string // "" means the case's domain
	hits   uint64 // the request's hits_addend
	descs  []Descriptor
	code   Code
	// statuses are the descriptor statuses, as describe renders them.
	statuses []string
}

// TestCompatibility replays envoyproxy/ratelimit configurations and request sequences and
// checks each answer: the overall code and, per descriptor, the code, the current limit
// (requests_per_unit, unit, name) and limit_remaining. Each case runs in a synctest bubble
// whose clock starts at 2000-01-01 00:00:00 UTC, aligned to every unit up to a day, so
// fixed windows are exact.
func TestCompatibility(t *testing.T) {
	for _, tc := range []struct {
		name   string
		yaml   string
		domain string
		steps  []step
	}{
		{
			name: "per-key limit counted down to over limit, then a new window",
			yaml: `
domain: api
descriptors:
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 3}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 2"}},
				{descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 1"}},
				{descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OverLimit, statuses: []string{"OVER_LIMIT 3/MINUTE remaining 0"}},
				// Another value of the key has a counter of its own.
				{descs: []Descriptor{desc("remote_address", "10.0.0.2")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 2"}},
				// Still inside the first minute.
				{after: 59 * time.Second, descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OverLimit, statuses: []string{"OVER_LIMIT 3/MINUTE remaining 0"}},
				// The next minute is a new window.
				{after: time.Second, descs: []Descriptor{desc("remote_address", "10.0.0.1")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 2"}},
			},
		},
		{
			name: "nested descriptors",
			yaml: `
domain: edge
descriptors:
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: second, requests_per_unit: 2}
  - key: path
    rate_limit: {unit: second, requests_per_unit: 100}
`,
			domain: "edge",
			steps: []step{
				{descs: []Descriptor{desc("path", "/login", "remote_address", "1.2.3.4")}, code: OK, statuses: []string{"OK 2/SECOND remaining 1"}},
				{descs: []Descriptor{desc("path", "/login", "remote_address", "1.2.3.4")}, code: OK, statuses: []string{"OK 2/SECOND remaining 0"}},
				{descs: []Descriptor{desc("path", "/login", "remote_address", "1.2.3.4")}, code: OverLimit, statuses: []string{"OVER_LIMIT 2/SECOND remaining 0"}},
				{descs: []Descriptor{desc("path", "/login", "remote_address", "5.6.7.8")}, code: OK, statuses: []string{"OK 2/SECOND remaining 1"}},
				// /login itself has no rate_limit: the node in the middle limits nothing.
				{descs: []Descriptor{desc("path", "/login")}, code: OK, statuses: []string{"OK - remaining 0"}},
				// Other paths fall to the key-only default.
				{descs: []Descriptor{desc("path", "/home")}, code: OK, statuses: []string{"OK 100/SECOND remaining 99"}},
				// The default has no children: a longer descriptor matches nothing.
				{descs: []Descriptor{desc("path", "/home", "remote_address", "1.2.3.4")}, code: OK, statuses: []string{"OK - remaining 0"}},
				// A new second is a new window.
				{after: time.Second, descs: []Descriptor{desc("path", "/login", "remote_address", "1.2.3.4")}, code: OK, statuses: []string{"OK 2/SECOND remaining 1"}},
			},
		},
		{
			name: "key_value before the key-only default",
			yaml: `
domain: users
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 5}
  - key: user
    value: vip
    rate_limit: {unit: hour, requests_per_unit: 50, name: vip}
`,
			domain: "users",
			steps: []step{
				{descs: []Descriptor{desc("user", "vip")}, code: OK, statuses: []string{"OK 50/HOUR [vip] remaining 49"}},
				{descs: []Descriptor{desc("user", "bob")}, code: OK, statuses: []string{"OK 5/HOUR remaining 4"}},
				{descs: []Descriptor{desc("user", "bob")}, code: OK, statuses: []string{"OK 5/HOUR remaining 3"}},
				// The default counts each value apart.
				{descs: []Descriptor{desc("user", "alice")}, code: OK, statuses: []string{"OK 5/HOUR remaining 4"}},
				// An unknown key matches nothing.
				{descs: []Descriptor{desc("team", "x")}, code: OK, statuses: []string{"OK - remaining 0"}},
			},
		},
		{
			name: "wildcards",
			yaml: `
domain: files
descriptors:
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
			domain: "files",
			steps: []step{
				{descs: []Descriptor{desc("path", "/api/x")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				// Without share_threshold each matched value counts apart.
				{descs: []Descriptor{desc("path", "/api/y")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				// The first wildcard in file order wins over the longer one after it.
				{descs: []Descriptor{desc("path", "/api/admin/users")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				// An exact value beats any wildcard.
				{descs: []Descriptor{desc("path", "/api/v1")}, code: OK, statuses: []string{"OK 10/MINUTE remaining 9"}},
				// Outside every prefix: nothing.
				{descs: []Descriptor{desc("path", "/static/a")}, code: OK, statuses: []string{"OK - remaining 0"}},
				// share_threshold: every value matching "*" shares one counter.
				{descs: []Descriptor{desc("file", "a.txt")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				{descs: []Descriptor{desc("file", "b.txt")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("file", "c.txt")}, code: OverLimit, statuses: []string{"OVER_LIMIT 2/MINUTE remaining 0"}},
			},
		},
		{
			name: "unlimited",
			yaml: `
domain: api
descriptors:
  - key: internal
    rate_limit: {unlimited: true}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("internal", "health")}, code: OK, statuses: []string{"OK - remaining 4294967295"}},
				{descs: []Descriptor{desc("internal", "health")}, code: OK, statuses: []string{"OK - remaining 4294967295"}},
				{descs: []Descriptor{desc("internal", "health"), desc("user", "u")}, code: OK, statuses: []string{"OK - remaining 4294967295", "OK 1/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("internal", "health"), desc("user", "u")}, code: OverLimit, statuses: []string{"OK - remaining 4294967295", "OVER_LIMIT 1/MINUTE remaining 0"}},
			},
		},
		{
			name: "replaces",
			yaml: `
domain: api
descriptors:
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
			domain: "api",
			steps: []step{
				// per_user is replaced by premium in the same request: it is not applied.
				{descs: []Descriptor{desc("user", "u"), desc("plan", "premium")}, code: OK, statuses: []string{"OK - remaining 0", "OK 3/MINUTE [premium] remaining 2"}},
				{descs: []Descriptor{desc("plan", "premium"), desc("user", "u")}, code: OK, statuses: []string{"OK 3/MINUTE [premium] remaining 1", "OK - remaining 0"}},
				// Alone, per_user applies, and was never counted above.
				{descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 1/MINUTE [per_user] remaining 0"}},
				{descs: []Descriptor{desc("user", "u")}, code: OverLimit, statuses: []string{"OVER_LIMIT 1/MINUTE [per_user] remaining 0"}},
				// Replaced, it cannot deny either.
				{descs: []Descriptor{desc("user", "u"), desc("plan", "premium")}, code: OK, statuses: []string{"OK - remaining 0", "OK 3/MINUTE [premium] remaining 0"}},
			},
		},
		{
			name: "shadow_mode",
			yaml: `
domain: api
descriptors:
  - key: bot
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 2}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				{descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0"}},
				// Over the limit, but a shadow rule never denies.
				{descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0 shadow"}},
				{descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0 shadow"}},
				{after: time.Minute, descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				// More hits than the whole limit: over, in shadow.
				{hits: 3, descs: []Descriptor{desc("bot", "c")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0 shadow"}},
				// A deliberate difference: a shadow hit over the limit takes nothing here, so
				// one unit of the two is left. envoyproxy/ratelimit counts every hit, over the
				// limit or not, and answers remaining 0 (its count is then 4 of 2).
				{descs: []Descriptor{desc("bot", "c")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
			},
		},
		{
			name: "shadow_mode with requests_per_unit 0",
			yaml: `
domain: api
descriptors:
  - key: probe
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("probe", "p")}, code: OK, statuses: []string{"OK 0/MINUTE remaining 0 shadow"}},
				// The request is allowed, so the other descriptor takes its unit.
				{descs: []Descriptor{desc("probe", "p"), desc("user", "u")}, code: OK, statuses: []string{"OK 0/MINUTE remaining 0 shadow", "OK 2/MINUTE remaining 1"}},
				{descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0"}},
			},
		},
		{
			// Deliberate difference: the shadow rules of a request count only when its
			// enforced rules allow it. envoyproxy/ratelimit counts them in any case, so its
			// last answer below would have the shadow rule at remaining 0.
			name: "shadow rule of a denied request is only checked",
			yaml: `
domain: api
descriptors:
  - key: bot
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("bot", "b"), desc("user", "u")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 2", "OK 1/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("bot", "b"), desc("user", "u")}, code: OverLimit, statuses: []string{"OK 3/MINUTE remaining 2", "OVER_LIMIT 1/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("bot", "b")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 1"}},
			},
		},
		{
			name: "no matching rule and unknown domain",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("tenant", "t")}, code: OK, statuses: []string{"OK - remaining 0"}},
				{descs: []Descriptor{desc("user", "u", "extra", "x")}, code: OK, statuses: []string{"OK - remaining 0"}},
				{domain: "elsewhere", descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK - remaining 0"}},
				{descs: []Descriptor{desc("tenant", "t"), desc("user", "u")}, code: OK, statuses: []string{"OK - remaining 0", "OK 1/MINUTE remaining 0"}},
			},
		},
		{
			name: "request hits_addend",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 10}
`,
			domain: "api",
			steps: []step{
				// 0 means 1.
				{hits: 0, descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 10/MINUTE remaining 9"}},
				{hits: 5, descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 10/MINUTE remaining 4"}},
				{hits: 5, descs: []Descriptor{desc("user", "u")}, code: OverLimit, statuses: []string{"OVER_LIMIT 10/MINUTE remaining 0"}},
				// Deliberate difference: a denied request takes nothing, so the 4 units left
				// still pass. envoyproxy/ratelimit's counter would stand at 11 after the
				// denial above, and would answer OVER_LIMIT.
				{hits: 4, descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 10/MINUTE remaining 0"}},
				// More hits than the whole limit: over the limit, as in envoyproxy/ratelimit.
				{hits: 11, descs: []Descriptor{desc("user", "v")}, code: OverLimit, statuses: []string{"OVER_LIMIT 10/MINUTE remaining 0"}},
				// Deliberate difference again: nothing was taken by the denial.
				{hits: 1, descs: []Descriptor{desc("user", "v")}, code: OK, statuses: []string{"OK 10/MINUTE remaining 9"}},
			},
		},
		{
			name: "descriptor hits_addend",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 3}
`,
			domain: "api",
			steps: []step{
				// 0 checks without taking.
				{descs: []Descriptor{withHits(desc("user", "u"), 0)}, code: OK, statuses: []string{"OK 3/MINUTE remaining 3"}},
				{descs: []Descriptor{withHits(desc("user", "u"), 2)}, code: OK, statuses: []string{"OK 3/MINUTE remaining 1"}},
				{descs: []Descriptor{withHits(desc("user", "u"), 0)}, code: OK, statuses: []string{"OK 3/MINUTE remaining 1"}},
				// The descriptor's own hits_addend wins over the request's.
				{hits: 3, descs: []Descriptor{withHits(desc("user", "u"), 1)}, code: OK, statuses: []string{"OK 3/MINUTE remaining 0"}},
				// A check at exactly the limit is still OK.
				{descs: []Descriptor{withHits(desc("user", "u"), 0)}, code: OK, statuses: []string{"OK 3/MINUTE remaining 0"}},
				{descs: []Descriptor{withHits(desc("user", "u"), 1)}, code: OverLimit, statuses: []string{"OVER_LIMIT 3/MINUTE remaining 0"}},
				// Each descriptor takes its own hits, others the request's.
				{hits: 2, descs: []Descriptor{withHits(desc("user", "a"), 1), desc("user", "b")}, code: OK, statuses: []string{"OK 3/MINUTE remaining 2", "OK 3/MINUTE remaining 1"}},
			},
		},
		{
			name: "per-descriptor limit override",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 100, name: hourly}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE)}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
				{descs: []Descriptor{withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE)}, code: OK, statuses: []string{"OK 2/MINUTE remaining 0"}},
				{descs: []Descriptor{withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE)}, code: OverLimit, statuses: []string{"OVER_LIMIT 2/MINUTE remaining 0"}},
				// An override applies to entries no rule matches too.
				{descs: []Descriptor{withOverride(desc("tenant", "t"), 1, rlsv3.RateLimitResponse_RateLimit_SECOND)}, code: OK, statuses: []string{"OK 1/SECOND remaining 0"}},
				{after: time.Minute, descs: []Descriptor{withOverride(desc("user", "u"), 2, rlsv3.RateLimitResponse_RateLimit_MINUTE)}, code: OK, statuses: []string{"OK 2/MINUTE remaining 1"}},
			},
		},
		{
			// Deliberate difference: the descriptors of one request are all-or-nothing. When
			// one is over its limit the others take nothing, though each status still
			// reports its own code. envoyproxy/ratelimit would have counted user=u in the
			// denied request, and answered remaining 2 in the last step.
			name: "several descriptors are all-or-nothing",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("user", "u"), desc("ip", "1")}, code: OK, statuses: []string{"OK 5/MINUTE remaining 4", "OK 1/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("user", "u"), desc("ip", "1")}, code: OverLimit, statuses: []string{"OK 5/MINUTE remaining 4", "OVER_LIMIT 1/MINUTE remaining 0"}},
				// requests_per_unit 0 denies every hit, and the others take nothing either.
				{descs: []Descriptor{desc("user", "u"), desc("blocked", "x")}, code: OverLimit, statuses: []string{"OK 5/MINUTE remaining 4", "OVER_LIMIT 0/MINUTE remaining 0"}},
				{descs: []Descriptor{withHits(desc("blocked", "x"), 0)}, code: OK, statuses: []string{"OK 0/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("user", "u")}, code: OK, statuses: []string{"OK 5/MINUTE remaining 3"}},
			},
		},
		{
			// Deliberate difference: two descriptors of one request with the same entries
			// are one counter taking both descriptors' hits at once, and both report the
			// result. envoyproxy/ratelimit counts them one after the other: it would answer
			// remaining 4 then 3 in the first step, and OK then OVER_LIMIT in the second.
			name: "duplicate descriptors are merged",
			yaml: `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
			domain: "api",
			steps: []step{
				{descs: []Descriptor{desc("user", "u"), desc("user", "u")}, code: OK, statuses: []string{"OK 5/MINUTE remaining 3", "OK 5/MINUTE remaining 3"}},
				{descs: []Descriptor{desc("ip", "1"), desc("ip", "1")}, code: OverLimit, statuses: []string{"OVER_LIMIT 1/MINUTE remaining 0", "OVER_LIMIT 1/MINUTE remaining 0"}},
				{descs: []Descriptor{desc("ip", "1")}, code: OK, statuses: []string{"OK 1/MINUTE remaining 0"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, _ := newMemEngine(t, compile(t, tc.yaml), nil)
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
					if resp.Code != s.code {
						t.Errorf("step %d: overall code: got %v, want %v", i, resp.Code, s.code)
					}
					if got := describeAll(resp.Statuses); !slices.Equal(got, s.statuses) {
						t.Errorf("step %d: statuses:\ngot  %q\nwant %q", i, got, s.statuses)
					}
				}
			})
		})
	}
}
