package engine

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// TestOverrideCountsApart: a limit override on the same entries as a rule counts apart
// from the rule, in one request or across requests, and two different overrides count
// apart from each other; in an unknown domain an override does not apply.
func TestOverrideCountsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := compile(t, "domain: d\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 5}\n")
		e, _ := newMemEngine(t, set, nil)
		minute := rules.Unit(2)
		req := &Request{Domain: "d", Descriptors: []Descriptor{
			desc("user", "a"),
			withOverride(desc("user", "a"), 2, minute),
			withOverride(desc("user", "a"), 3, minute),
		}}
		for i, want := range [][]string{
			{"OK 5/MINUTE remaining 4", "OK 2/MINUTE remaining 1", "OK 3/MINUTE remaining 2"},
			{"OK 5/MINUTE remaining 3", "OK 2/MINUTE remaining 0", "OK 3/MINUTE remaining 1"},
			{"OK 5/MINUTE remaining 3", "OVER_LIMIT 2/MINUTE remaining 0", "OK 3/MINUTE remaining 1"},
		} {
			resp, err := e.Decide(context.Background(), req)
			if err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
			if got := describeAll(resp.Statuses); !slices.Equal(got, want) {
				t.Fatalf("call %d: got %q, want %q", i+1, got, want)
			}
		}
		resp, err := e.Decide(context.Background(), &Request{Domain: "elsewhere", Descriptors: []Descriptor{withOverride(desc("user", "a"), 1, minute)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(resp.Statuses[0]); got != "OK - remaining 0" {
			t.Errorf("override in an unknown domain: got %q, want no limit", got)
		}
	})
}
