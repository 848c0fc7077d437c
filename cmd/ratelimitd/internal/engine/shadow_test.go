package engine

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/go-ratelimit/ratelimit/httplimit"
)

// TestShadowRulesCountOnTheirOwn: one shadow rule over its limit does not stop the
// request's other shadow rules from counting, and shadow rules never drive the headers.
func TestShadowRulesCountOnTheirOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := compile(t, `
domain: d
descriptors:
  - key: a
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: b
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: c
    rate_limit: {unit: minute, requests_per_unit: 10, name: c}
`)
		e, _ := newMemEngine(t, set, &Options{Headers: httplimit.HeadersDraft03})
		req := &Request{Domain: "d", Descriptors: []Descriptor{desc("a", "x"), desc("b", "x"), desc("c", "x")}}
		for i, want := range [][]string{
			{"OK 1/MINUTE remaining 0", "OK 5/MINUTE remaining 4", "OK 10/MINUTE [c] remaining 9"},
			{"OK 1/MINUTE remaining 0 shadow", "OK 5/MINUTE remaining 3", "OK 10/MINUTE [c] remaining 8"},
		} {
			resp, err := e.Decide(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if got := describeAll(resp.Statuses); !slices.Equal(got, want) {
				t.Fatalf("call %d: got %q, want %q", i+1, got, want)
			}
			if resp.Code != OK {
				t.Fatalf("call %d: %v, want OK (only shadow rules are over)", i+1, resp.Code)
			}
			if got := resp.Headers[1]; got.Value != want[2][len(want[2])-1:] {
				t.Fatalf("call %d: header %v, want the enforced rule's remaining", i+1, got)
			}
		}
	})
}
