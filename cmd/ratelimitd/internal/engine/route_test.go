package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

const routeRules = `domain: d
descriptors:
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: b
    rate_limit: {unit: minute, requests_per_unit: 2, consistency: eventual}
  - key: s
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1, consistency: eventual}
`

// newRouted returns an engine whose eventual rules go to a store of their own, and the
// two stores.
func newRouted(t *testing.T) (*Engine, *countingStore, *countingStore) {
	t.Helper()
	other := memorystore.New(nil)
	t.Cleanup(func() { other.Close() })
	eventual := &countingStore{BatchStore: other}
	e, strict := newMemEngine(t, compile(t, routeRules), &Options{Route: func(r *rules.Rule) ratelimit.Store {
		if r.Consistency == rules.Eventual {
			return eventual
		}
		return nil
	}})
	return e, strict, eventual
}

// TestRoute: each rule's hits go to its own store, a request mixing them is decided all
// or nothing (every limit checked, then each taken), and Reset and Inspect follow the
// route.
func TestRoute(t *testing.T) {
	e, strict, eventual := newRouted(t)
	ctx := context.Background()
	decide := func(ds ...Descriptor) []string {
		t.Helper()
		resp, err := e.Decide(ctx, &Request{Domain: "d", Descriptors: ds})
		if err != nil {
			t.Fatal(err)
		}
		return describeAll(resp.Statuses)
	}
	if got, want := decide(desc("b", "x")), []string{"OK 2/MINUTE remaining 1"}; !slices.Equal(got, want) {
		t.Errorf("b alone: %q, want %q", got, want)
	}
	if strict.calls() != 0 || eventual.calls() != 1 {
		t.Errorf("b alone reached the strict store %d times and the eventual one %d, want 0 and 1", strict.calls(), eventual.calls())
	}
	if got, want := decide(desc("a", "x"), desc("b", "x")), []string{"OK 3/MINUTE remaining 2", "OK 2/MINUTE remaining 0"}; !slices.Equal(got, want) {
		t.Errorf("a and b: %q, want %q", got, want)
	}
	// b is spent: the mixed request is denied and takes nothing from a.
	if got, want := decide(desc("a", "x"), desc("b", "x")), []string{"OK 3/MINUTE remaining 2", "OVER_LIMIT 2/MINUTE remaining 0"}; !slices.Equal(got, want) {
		t.Errorf("a and b over b's limit: %q, want %q", got, want)
	}
	if got, want := decide(desc("a", "x")), []string{"OK 3/MINUTE remaining 1"}; !slices.Equal(got, want) {
		t.Errorf("a after the denial: %q, want %q (the denial took nothing)", got, want)
	}
	// A shadow rule routed apart is decided by its own store.
	before := eventual.calls()
	if got, want := decide(desc("a", "x"), desc("s", "x")), []string{"OK 3/MINUTE remaining 0", "OK 1/MINUTE remaining 0"}; !slices.Equal(got, want) {
		t.Errorf("a and shadow s: %q, want %q", got, want)
	}
	if eventual.calls() == before {
		t.Error("the shadow rule's hit did not reach its store")
	}
	if ok, err := e.Reset(ctx, "d", []rules.Entry{{Key: "b", Value: "x"}}); !ok || err != nil {
		t.Fatalf("Reset(b) = %v, %v", ok, err)
	}
	if eventual.rst != 1 || strict.rst != 0 {
		t.Errorf("Reset(b) reached the strict store %d times and the eventual one %d, want 0 and 1", strict.rst, eventual.rst)
	}
	st, err := e.Inspect(ctx, "d", []rules.Entry{{Key: "b", Value: "x"}})
	if err != nil || describe(st) != "OK 2/MINUTE remaining 2" {
		t.Errorf("Inspect(b) after Reset = %q, %v", describe(st), err)
	}
}
