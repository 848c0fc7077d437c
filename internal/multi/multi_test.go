package multi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// takeOnly hides a store's TakeAll: a store that cannot batch.
type takeOnly struct{ s ratelimit.Store }

func (t takeOnly) Take(ctx context.Context, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	return t.s.Take(ctx, key, alg, l, n)
}
func (t takeOnly) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	return t.s.Reset(ctx, key, alg)
}

// events records observer events.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) Observe(ev ratelimit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev.Rule+":"+ev.Outcome.String())
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.got, ",")
}

func newStore(t *testing.T) *memorystore.Store {
	s := memorystore.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func hour(s ratelimit.Store, n int) *ratelimit.Limiter {
	return ratelimit.New(s, ratelimit.FixedWindow, ratelimit.PerHour(n))
}

func remaining(t *testing.T, s ratelimit.Store, key string, n int) int {
	t.Helper()
	r, err := s.Take(t.Context(), key, ratelimit.FixedWindow, ratelimit.PerHour(n), 0)
	if err != nil {
		t.Fatal(err)
	}
	return r.Remaining
}

func TestCompileErrors(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{{Limiter: hour(s, 1)}}, "rule 0 has no name"},
		{[]Spec{{Name: "a\"b", Limiter: hour(s, 1)}}, "printable ASCII"},
		{[]Spec{{Name: strings.Repeat("n", MaxNameLen+1), Limiter: hour(s, 1)}}, "1 to 64 bytes"},
		{[]Spec{{Name: "a", Limiter: hour(s, 1)}, {Name: "a", Limiter: hour(s, 1)}}, `two rules are named "a"`},
		{[]Spec{{Name: "a"}}, `rule "a": no Limiter`},
		{[]Spec{{Name: "a", Limiter: ratelimit.New(nil, ratelimit.GCRA, ratelimit.PerHour(1))}}, "has no store"},
		{[]Spec{{Name: "a", Limiter: ratelimit.New(s, 0, ratelimit.PerHour(1))}}, "algorithm"},
		{[]Spec{{Name: "a", Limiter: ratelimit.New(s, ratelimit.GCRA, ratelimit.Limit{})}}, "limit"},
	} {
		_, err := Compile(tc.specs, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v, want an error containing %q", tc.specs, err, tc.want)
		}
	}
}

// Rules on one store form one group whatever their order; a store of an
// uncomparable type never shares a group.
func TestGroups(t *testing.T) {
	a, b := newStore(t), newStore(t)
	set, err := Compile([]Spec{
		{Name: "x", Limiter: hour(a, 1)}, {Name: "y", Limiter: hour(b, 1)}, {Name: "z", Limiter: hour(a, 1)},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := []int{set.Rules[0].group, set.Rules[1].group, set.Rules[2].group}; g[0] != 0 || g[1] != 1 || g[2] != 0 {
		t.Errorf("groups %v, want [0 1 0]", g)
	}
	if set.Rules[2].Prefix != "1:z:k:" || set.Rules[2].FallbackPrefix != "1:z:i:" {
		t.Errorf("prefixes %q %q", set.Rules[2].Prefix, set.Rules[2].FallbackPrefix)
	}
}

// Rule namespaces are printable and never overlap: with a bare separator, rule "a" and
// key "k:b:k:x" would share the store key of rule "a:k:b" and key "x".
func TestNamespacesDistinct(t *testing.T) {
	s := newStore(t)
	set, err := Compile([]Spec{{Name: "a", Limiter: hour(s, 1)}, {Name: "a:k:b", Limiter: hour(s, 1)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := set.Rules[0], set.Rules[1]
	keys := []string{a.Prefix + "b:k:x", b.Prefix + "x", a.FallbackPrefix + "x", b.FallbackPrefix + "x"}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("two rules share the store key %q", k)
		}
		seen[k] = true
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				t.Errorf("store key %q has the unprintable byte %#x", k, k[i])
			}
		}
	}
}

func TestDecide(t *testing.T) {
	one, two := newStore(t), newStore(t)
	obs, limObs := &events{}, &events{}
	narrow := ratelimit.NewWithOptions(one, ratelimit.FixedWindow, ratelimit.PerHour(1), &ratelimit.Options{Observer: limObs})
	set, err := Compile([]Spec{
		{Name: "broad", Limiter: hour(one, 10)},
		{Name: "other", Limiter: hour(two, 10)},
		{Name: "narrow", Limiter: narrow},
	}, Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	entries := func(n int) []Entry {
		return []Entry{
			{Rule: &set.Rules[0], Key: "broad", N: n},
			{Rule: &set.Rules[1], Key: "other", N: n},
			{Rule: &set.Rules[2], Key: "narrow", N: n},
		}
	}
	ctx := t.Context()
	steps := []struct {
		n       int
		verdict Verdict
		lim     string // the limiting rule, "" for none
	}{
		{1, Allowed, "narrow"}, // narrow has 0 of 1 left: the smallest share
		{0, Allowed, "narrow"}, // a check: n == 0 passes at any level
		{1, Limited, "narrow"}, // narrow denies; broad, in its group, takes nothing
		{-1, BadCost, ""},      // refused at broad, the first entry
		{2, TooCostly, ""},     // refused at narrow, whose capacity is 1
	}
	for i, st := range steps {
		es := entries(st.n)
		o := set.Decide(ctx, es)
		lim := ""
		if o.Limiting >= 0 {
			lim = es[o.Limiting].Rule.Name
		}
		if o.Verdict != st.verdict || lim != st.lim {
			t.Errorf("step %d: Decide(n=%d) = verdict %d, limiting %q; want %d, %q", i, st.n, o.Verdict, lim, st.verdict, st.lim)
		}
	}
	// Broad and narrow are one group, decided first: narrow's denial took nothing from
	// broad, and "other", in the next group, was never asked.
	if got := remaining(t, one, "broad", 10); got != 9 {
		t.Errorf("broad: %d remaining, want 9", got)
	}
	if got := remaining(t, two, "other", 10); got != 9 {
		t.Errorf("other: %d remaining, want 9", got)
	}
	want := "broad:allowed,narrow:allowed,other:allowed," + // step 0
		"broad:allowed,narrow:allowed,other:allowed," + // step 1
		"narrow:denied," + // step 2: broad would have admitted and is not reported
		"broad:failed," + // step 3
		"narrow:denied" // step 4
	if got := obs.String(); got != want {
		t.Errorf("Set observer heard\n%s\nwant\n%s", got, want)
	}
	// The Limiter's own Observer hears its rule, and only its rule.
	if got := limObs.String(); got != "narrow:allowed,narrow:allowed,narrow:denied,narrow:denied" {
		t.Errorf("Limiter observer heard %q", got)
	}
}

func TestFailPolicy(t *testing.T) {
	closed := memorystore.New(nil)
	closed.Close()
	good := newStore(t)
	if _, err := Compile(nil, Options{OnStoreError: ratelimit.FailError}); err == nil {
		t.Error("Compile with OnStoreError FailError: no error")
	}
	for _, policy := range []ratelimit.FailPolicy{ratelimit.FailLocal, ratelimit.FailOpen, ratelimit.FailClosed} {
		failClosed := policy == ratelimit.FailClosed
		set, err := Compile([]Spec{{Name: "dead", Limiter: hour(closed, 5)}, {Name: "good", Limiter: hour(good, 5)}}, Options{OnStoreError: policy})
		if err != nil {
			t.Fatal(err)
		}
		es := []Entry{{Rule: &set.Rules[0], Key: "k", N: 1}, {Rule: &set.Rules[1], Key: "k", N: 1}}
		o := set.Decide(t.Context(), es)
		want := Allowed
		if failClosed {
			want = Unavailable
		}
		if o.Verdict != want || !errors.Is(o.Err, ratelimit.ErrClosed) || o.Rule.Name != "dead" {
			t.Errorf("FailClosed %v: verdict %d, err %v, rule %v; want %d and ErrClosed from dead", failClosed, o.Verdict, o.Err, o.Rule, want)
		}
		if !failClosed && (es[0].Decided || !es[1].Decided || o.Limiting != 1) {
			t.Errorf("fail open: decided %v %v, limiting %d; want only good, limiting 1", es[0].Decided, es[1].Decided, o.Limiting)
		}
	}
}

// A store that cannot batch is checked before anything is taken: a denial leaks nothing.
func TestTakeAllFallback(t *testing.T) {
	s := newStore(t)
	plain := takeOnly{s}
	reqs := []ratelimit.Request{
		{Key: "wide", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerHour(10), N: 1},
		{Key: "tight", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerHour(1), N: 1},
	}
	res := make([]ratelimit.Result, 2)
	for i, want := range []bool{true, false, false} {
		ok, err := TakeAll(t.Context(), plain, reqs, res)
		if err != nil || ok != want {
			t.Fatalf("step %d: TakeAll = %v, %v; want %v", i, ok, err, want)
		}
	}
	if got := remaining(t, s, "wide", 10); got != 9 {
		t.Errorf("wide: %d remaining, want 9", got)
	}
	if res[1].Allowed || !res[0].Allowed {
		t.Errorf("results of the denial %+v: want wide admitting, tight denying", res)
	}
}

func TestLimiting(t *testing.T) {
	r := func(allowed bool, rem, burst int, retry time.Duration) Entry {
		return Entry{Decided: true, Result: ratelimit.Result{Allowed: allowed, Remaining: rem, RetryAfter: retry, Limit: ratelimit.Limit{Burst: burst}}}
	}
	for _, tc := range []struct {
		es      []Entry
		allowed bool
		want    int
	}{
		{nil, true, -1},
		{[]Entry{r(true, 5, 10, 0), r(true, 2, 100, 0)}, true, 1},                       // 2% beats 50%
		{[]Entry{r(true, 5, 10, 0), {Result: ratelimit.Result{Remaining: 0}}}, true, 0}, // undecided is skipped
		{[]Entry{r(false, 0, 10, time.Second), r(true, 9, 10, 0), r(false, 0, 5, time.Minute)}, false, 2},
		{[]Entry{r(true, 1, 10, 0), r(true, 2, 10, 0)}, false, 0}, // a batch denied without a reason
	} {
		if got := Limiting(tc.es, tc.allowed); got != tc.want {
			t.Errorf("Limiting(%+v, %v) = %d, want %d", tc.es, tc.allowed, got, tc.want)
		}
	}
}

// Deciding a single rule, or three on one store, allocates nothing.
func TestDecideAllocs(t *testing.T) {
	s := newStore(t)
	big := ratelimit.Limit{Rate: 1 << 30, Period: time.Hour}
	set, err := Compile([]Spec{
		{Name: "a", Limiter: ratelimit.New(s, ratelimit.GCRA, big)},
		{Name: "b", Limiter: ratelimit.New(s, ratelimit.TokenBucket, big)},
		{Name: "c", Limiter: ratelimit.New(s, ratelimit.FixedWindow, big)},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var es [3]Entry
	for _, n := range []int{1, 3} {
		allocs := testing.AllocsPerRun(200, func() {
			for i := range n {
				es[i] = Entry{Rule: &set.Rules[i], Key: "key", N: 1}
			}
			if o := set.Decide(ctx, es[:n]); o.Verdict != Allowed {
				t.Fatal(o)
			}
		})
		if allocs != 0 {
			t.Errorf("%d rules: %v allocations, want 0", n, allocs)
		}
	}
}
