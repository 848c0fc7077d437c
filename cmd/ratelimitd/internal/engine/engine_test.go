package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

const headerRules = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5, name: per_user}
  - key: ip
    rate_limit: {unit: minute, requests_per_unit: 2}
  - key: hourly
    rate_limit: {unit: hour, requests_per_unit: 3}
  - key: bucket
    rate_limit: {requests_per_unit: 10, unit: second, algorithm: token_bucket, burst: 20, name: bucket}
  - key: free
    rate_limit: {unlimited: true}
`

func TestHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		style httplimit.HeaderStyle
		calls [][]Descriptor // made before the checked one
		last  []Descriptor
		want  []Header
	}{
		{
			name:  "none adds nothing",
			style: httplimit.HeadersNone,
			last:  []Descriptor{desc("user", "u"), desc("ip", "1")},
			want:  nil,
		},
		{
			name:  "draft03 picks the descriptor closest to its limit",
			style: httplimit.HeadersDraft03,
			last:  []Descriptor{desc("user", "u"), desc("ip", "1")},
			want:  []Header{{"RateLimit-Limit", "2"}, {"RateLimit-Remaining", "1"}, {"RateLimit-Reset", "60"}},
		},
		{
			name:  "draft03 picks the over-limit descriptor even after one with 0 left",
			style: httplimit.HeadersDraft03,
			calls: [][]Descriptor{{desc("ip", "1"), desc("ip", "1")}, {desc("hourly", "h"), desc("hourly", "h"), desc("hourly", "h")}},
			// ip=1 is used up but only checked (OK, 0 left); hourly=h is over.
			last: []Descriptor{withHits(desc("ip", "1"), 0), desc("hourly", "h")},
			want: []Header{{"RateLimit-Limit", "3"}, {"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "3600"}},
		},
		{
			name:  "draft03 ignores unlimited and unmatched descriptors",
			style: httplimit.HeadersDraft03,
			last:  []Descriptor{desc("free", "x"), desc("nothing", "x"), desc("hourly", "h")},
			want:  []Header{{"RateLimit-Limit", "3"}, {"RateLimit-Remaining", "2"}, {"RateLimit-Reset", "3600"}},
		},
		{
			name:  "draft03 without any applied rule adds nothing",
			style: httplimit.HeadersDraft03,
			last:  []Descriptor{desc("free", "x"), desc("nothing", "x")},
			want:  nil,
		},
		{
			name:  "legacy sends the same values as X-RateLimit-*",
			style: httplimit.HeadersLegacy,
			last:  []Descriptor{desc("user", "u"), desc("ip", "1")},
			want:  []Header{{"X-RateLimit-Limit", "2"}, {"X-RateLimit-Remaining", "1"}, {"X-RateLimit-Reset", "60"}},
		},
		{
			name:  "ietf lists every applied rule and names the limiting one",
			style: httplimit.HeadersIETF,
			last:  []Descriptor{desc("user", "u"), desc("free", "x"), desc("ip", "1"), desc("bucket", "b")},
			want: []Header{
				{"RateLimit-Policy", `"per_user";q=5;w=60, "api.ip";q=2;w=60, "bucket";q=20;w=2`},
				{"RateLimit", `"api.ip";r=1;t=60`},
			},
		},
		{
			name:  "ietf names the over-limit rule",
			style: httplimit.HeadersIETF,
			calls: [][]Descriptor{{desc("hourly", "h"), desc("hourly", "h"), desc("hourly", "h")}},
			last:  []Descriptor{desc("user", "u"), desc("hourly", "h")},
			want: []Header{
				{"RateLimit-Policy", `"per_user";q=5;w=60, "api.hourly";q=3;w=3600`},
				{"RateLimit", `"api.hourly";r=0;t=3600`},
			},
		},
		{
			name:  "ietf without any applied rule adds nothing",
			style: httplimit.HeadersIETF,
			last:  []Descriptor{desc("free", "x")},
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, _ := newMemEngine(t, compile(t, headerRules), &Options{Headers: tc.style})
				for _, descs := range tc.calls {
					for _, d := range descs {
						if _, err := e.Decide(t.Context(), &Request{Domain: "api", Descriptors: []Descriptor{d}}); err != nil {
							t.Fatalf("Decide: got error %v, want none", err)
						}
					}
				}
				resp, err := e.Decide(t.Context(), &Request{Domain: "api", Descriptors: tc.last})
				if err != nil {
					t.Fatalf("Decide: got error %v, want none", err)
				}
				if !slices.Equal(resp.Headers, tc.want) {
					t.Errorf("headers: got %q, want %q", resp.Headers, tc.want)
				}
			})
		})
	}
}

// TestResetAfter checks the time to reset of fixed windows, aligned to the Unix epoch as
// envoyproxy/ratelimit's duration_until_reset is.
func TestResetAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newMemEngine(t, compile(t, headerRules), nil)
		time.Sleep(15 * time.Second)
		for _, tc := range []struct {
			d    Descriptor
			want time.Duration
		}{
			{desc("user", "u"), 45 * time.Second},
			{desc("hourly", "h"), time.Hour - 15*time.Second},
			// A token bucket is full again once the taken token is back: 1/10 s.
			{desc("bucket", "b"), 100 * time.Millisecond},
		} {
			resp, err := e.Decide(t.Context(), &Request{Domain: "api", Descriptors: []Descriptor{tc.d}})
			if err != nil {
				t.Fatalf("Decide: got error %v, want none", err)
			}
			if got := resp.Statuses[0].ResetAfter; got != tc.want {
				t.Errorf("%v: ResetAfter: got %v, want %v", tc.d.Entries, got, tc.want)
			}
		}
	})
}

func TestInspectAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, cs := newMemEngine(t, compile(t, `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: free
    rate_limit: {unlimited: true}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: file
    value: "*"
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 2}
`), nil)
		ctx := t.Context()
		decide := func(d Descriptor) Status {
			t.Helper()
			resp, err := e.Decide(ctx, &Request{Domain: "api", Descriptors: []Descriptor{d}})
			if err != nil {
				t.Fatalf("Decide: got error %v, want none", err)
			}
			return resp.Statuses[0]
		}
		inspect := func(kv ...string) Status {
			t.Helper()
			st, err := e.Inspect(ctx, "api", desc(kv...).Entries)
			if err != nil {
				t.Fatalf("Inspect(%q): got error %v, want none", kv, err)
			}
			return st
		}
		decide(desc("user", "u"))
		decide(desc("user", "u"))
		for range 2 { // Inspect takes nothing
			if got, want := describe(inspect("user", "u")), "OK 3/MINUTE remaining 1"; got != want {
				t.Errorf("Inspect(user=u): got %q, want %q", got, want)
			}
		}
		if got, want := describe(inspect("user", "other")), "OK 3/MINUTE remaining 3"; got != want {
			t.Errorf("Inspect(user=other): got %q, want %q", got, want)
		}
		if got, want := describe(inspect("nothing", "x")), "OK - remaining 0"; got != want {
			t.Errorf("Inspect(nothing=x): got %q, want %q", got, want)
		}
		if got, want := describe(inspect("free", "x")), "OK - remaining 4294967295"; got != want {
			t.Errorf("Inspect(free=x): got %q, want %q", got, want)
		}
		if _, err := e.Inspect(ctx, "", desc("user", "u").Entries); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Inspect with no domain: got error %v, want ErrInvalidRequest", err)
		}

		decide(desc("user", "u"))
		if got, want := describe(decide(desc("user", "u"))), "OVER_LIMIT 3/MINUTE remaining 0"; got != want {
			t.Fatalf("Decide(user=u) at the limit: got %q, want %q", got, want)
		}
		ok, err := e.Reset(ctx, "api", desc("user", "u").Entries)
		if !ok || err != nil {
			t.Fatalf("Reset(user=u): got %t, %v, want true, nil", ok, err)
		}
		if got, want := describe(decide(desc("user", "u"))), "OK 3/MINUTE remaining 2"; got != want {
			t.Errorf("Decide(user=u) after Reset: got %q, want %q", got, want)
		}

		// Values counted under one share_threshold wildcard are reset together.
		decide(desc("file", "a"))
		decide(desc("file", "b"))
		if ok, err := e.Reset(ctx, "api", desc("file", "c").Entries); !ok || err != nil {
			t.Fatalf("Reset(file=c): got %t, %v, want true, nil", ok, err)
		}
		if got, want := describe(inspect("file", "a")), "OK 2/MINUTE remaining 2"; got != want {
			t.Errorf("Inspect(file=a) after Reset(file=c): got %q, want %q", got, want)
		}

		before := cs.calls()
		for _, kv := range [][]string{{"free", "x"}, {"blocked", "x"}, {"nothing", "x"}, {"user", "u", "deeper", "x"}} {
			if ok, err := e.Reset(ctx, "api", desc(kv...).Entries); ok || err != nil {
				t.Errorf("Reset(%q): got %t, %v, want false, nil", kv, ok, err)
			}
		}
		if got := cs.calls(); got != before {
			t.Errorf("store calls by Resets of rules without state: got %d, want 0", got-before)
		}
		if _, err := e.Reset(ctx, "api", nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Reset with no entries: got error %v, want ErrInvalidRequest", err)
		}
	})
}

func TestInvalidRequests(t *testing.T) {
	set := compile(t, headerRules)
	many := make([]Descriptor, MaxDescriptors+1)
	for i := range many {
		many[i] = desc("user", fmt.Sprint(i))
	}
	long := Descriptor{}
	for i := range MaxEntries + 1 {
		long.Entries = append(long.Entries, rules.Entry{Key: fmt.Sprint("k", i), Value: "v"})
	}
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"empty domain", Request{Descriptors: []Descriptor{desc("user", "u")}}, "rate limit domain must not be empty"},
		{"no descriptors", Request{Domain: "api"}, "rate limit descriptor list must not be empty"},
		{"too many descriptors", Request{Domain: "api", Descriptors: many}, "65 descriptors, at most 64 are allowed"},
		{"negative hits", Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u"), {Entries: desc("user", "v").Entries, NegativeHits: true}}}, "descriptor 1: negative hits (returning units) are not supported"},
		{"descriptor without entries", Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u"), {}}}, "descriptor 1 has no entries"},
		{"too many entries", Request{Domain: "api", Descriptors: []Descriptor{long}}, "descriptor 0 has 33 entries, at most 32 are allowed"},
		{"override with UNKNOWN unit", Request{Domain: "api", Descriptors: []Descriptor{withOverride(desc("user", "u"), 1, rlsv3.RateLimitResponse_RateLimit_UNKNOWN)}}, "descriptor 0: limit override has unit UNKNOWN"},
		{"override with an out-of-range unit", Request{Domain: "api", Descriptors: []Descriptor{withOverride(desc("user", "u"), 1, rules.Unit(42))}}, "descriptor 0: limit override has unit 42"},
		{"override too long", Request{Domain: "api", Descriptors: []Descriptor{{Entries: desc("user", "u").Entries, Override: &Override{RequestsPerUnit: 1, Unit: rlsv3.RateLimitResponse_RateLimit_YEAR, Multiplier: 101}}}}, "descriptor 0: limit override of 101 × YEAR is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &recorder{}
			e, cs := newMemEngine(t, set, &Options{Observer: obs})
			resp, err := e.Decide(context.Background(), &tc.req)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("Decide: got %v, want an ErrInvalidRequest saying %q", err, tc.want)
			}
			if resp != nil {
				t.Errorf("Decide: got response %+v, want nil", resp)
			}
			if got := cs.calls(); got != 0 {
				t.Errorf("store calls: got %d, want 0", got)
			}
			if got := len(obs.events()); got != 0 {
				t.Errorf("observer events: got %d, want 0", got)
			}
		})
	}

	// A request at the limits is accepted.
	e, _ := newMemEngine(t, set, nil)
	at := Descriptor{Entries: long.Entries[:MaxEntries]}
	req := Request{Domain: "api", Descriptors: append(many[:MaxDescriptors-1:MaxDescriptors-1], at)}
	if _, err := e.Decide(context.Background(), &req); err != nil {
		t.Errorf("Decide with %d descriptors and %d entries: got error %v, want none", MaxDescriptors, MaxEntries, err)
	}
	over := Request{Domain: "api", Descriptors: []Descriptor{{Entries: desc("user", "u").Entries, Override: &Override{RequestsPerUnit: 1, Unit: rlsv3.RateLimitResponse_RateLimit_YEAR, Multiplier: 100}}}}
	if _, err := e.Decide(context.Background(), &over); err != nil {
		t.Errorf("Decide with an override of 100 years: got error %v, want none", err)
	}
}

// TestStoreKeyDistinct checks that no choice of domain, keys and values makes two
// different descriptors share a store key.
func TestStoreKeyDistinct(t *testing.T) {
	type key struct {
		domain  string
		entries []rules.Entry
	}
	e := func(kv ...string) []rules.Entry { return desc(kv...).Entries }
	for _, tc := range []struct {
		name string
		a, b key
	}{
		{"value holding a second entry", key{"d", e("a", "b|c=d")}, key{"d", e("a", "b", "c", "d")}},
		{"value holding a second entry with separators", key{"d", e("a", "b|:c=:d")}, key{"d", e("a", "b", "c", "d")}},
		{"value holding a second entry with lengths", key{"d", e("a", "b|1:c=1:d")}, key{"d", e("a", "b", "c", "d")}},
		{"value holding an encoded second entry", key{"d", e("a", "1:b|1:c=1:d")}, key{"d", e("a", "b", "c", "d")}},
		{"key holding the value", key{"d", e("a=1:b", "")}, key{"d", e("a", "b")}},
		{"domain holding an entry", key{"d|1:a=1:b", e("c", "d")}, key{"d", e("a", "b", "c", "d")}},
		{"domain holding an entry without lengths", key{"d|a=b", e("c", "d")}, key{"d", e("a", "b", "c", "d")}},
		{"domain holding an entry with separators", key{"d|:a=:b", e("c", "d")}, key{"d", e("a", "b", "c", "d")}},
		{"split between key and value", key{"d", e("ab", "c")}, key{"d", e("a", "bc")}},
		{"split between domain and key", key{"da", e("b", "c")}, key{"d", e("ab", "c")}},
		{"empty value and no entry", key{"d", e("a", "")}, key{"d", e("a", "", "", "")}},
		{"separator characters", key{"d", e("a", "|")}, key{"d", e("a|", "")}},
		{"length digits", key{"d", e("a", "1:")}, key{"d", e("a", "")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka := storeKey(tc.a.domain, tc.a.entries, make([]string, len(tc.a.entries)))
			kb := storeKey(tc.b.domain, tc.b.entries, make([]string, len(tc.b.entries)))
			if ka == kb {
				t.Errorf("storeKey: got %q for both %+v and %+v, want distinct keys", ka, tc.a, tc.b)
			}
		})
	}

	// The same descriptor has one key, and values under one shared wildcard share it.
	k1 := storeKey("d", e("file", "a"), []string{"*"})
	k2 := storeKey("d", e("file", "b"), []string{"*"})
	if k1 != k2 {
		t.Errorf("storeKey of two values under shared wildcard: got %q and %q, want equal", k1, k2)
	}
	// The literal value "*" matches the wildcard's descriptor exactly: the same rule, and
	// the same counter.
	if k3 := storeKey("d", e("file", "*"), []string{""}); k3 != k1 {
		t.Errorf("storeKey of the literal value: got %q, want the shared key %q", k3, k1)
	}

	// End to end: the hostile value and the two entries count apart.
	synctest.Test(t, func(t *testing.T) {
		eng, _ := newMemEngine(t, compile(t, `
domain: d
descriptors:
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 1}
    descriptors:
      - key: c
        rate_limit: {unit: minute, requests_per_unit: 1}
`), nil)
		for _, d := range []Descriptor{desc("a", "b", "c", "d"), desc("a", "b|c=d"), desc("a", "b|:c=:d"), desc("a", "b|1:c=1:d")} {
			resp, err := eng.Decide(t.Context(), &Request{Domain: "d", Descriptors: []Descriptor{d}})
			if err != nil {
				t.Fatalf("Decide: got error %v, want none", err)
			}
			if got, want := describe(resp.Statuses[0]), "OK 1/MINUTE remaining 0"; got != want {
				t.Errorf("Decide(%v): got %q, want %q", d.Entries, got, want)
			}
		}
	})
}

// TestConcurrentAdmitsExactlyTheLimit has 64 goroutines hit one descriptor, and another
// pair of descriptors all-or-nothing, at once.
func TestConcurrentAdmitsExactlyTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newMemEngine(t, compile(t, rulestest.Limits("api", "user", "10/hour", "a", "20/hour", "b", "7/hour")), nil)
		const workers, each = 64, 4
		var single, pair atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					resp, err := e.Decide(t.Context(), &Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u")}})
					if err != nil {
						t.Errorf("Decide: got error %v, want none", err)
						return
					}
					if resp.Code == OK {
						single.Add(1)
					}
					resp, err = e.Decide(t.Context(), &Request{Domain: "api", Descriptors: []Descriptor{desc("a", "x"), desc("b", "x")}})
					if err != nil {
						t.Errorf("Decide: got error %v, want none", err)
						return
					}
					if resp.Code == OK {
						pair.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := single.Load(); got != 10 {
			t.Errorf("admitted on one descriptor: got %d, want 10", got)
		}
		if got := pair.Load(); got != 7 {
			t.Errorf("admitted on the pair: got %d, want 7", got)
		}
		// a took only for the 7 admitted pairs.
		st, err := e.Inspect(t.Context(), "api", desc("a", "x").Entries)
		if err != nil || st.Remaining != 13 {
			t.Errorf("Inspect(a=x): got remaining %d, %v, want 13, nil", st.Remaining, err)
		}
	})
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	decided   []string
	failed    []string
	latencies int
	served    []string
}

func (r *recorder) Decided(domain string, entries []rules.Entry, st *Status, hits uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := fmt.Sprintf("%s %v hits %d: %s", domain, entries, hits, describe(*st))
	if st.Unmatched {
		e += " unmatched"
	}
	r.decided = append(r.decided, e)
}

func (r *recorder) Failed(domain string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, domain+": "+err.Error())
}

func (r *recorder) Latency(string, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencies++
}

func (r *recorder) Served(transport string, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.served = append(r.served, transport+" "+o.String())
}

func (r *recorder) events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.decided)
	out = append(out, r.failed...)
	for range r.latencies {
		out = append(out, "latency")
	}
	return append(out, r.served...)
}

func TestObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		obs := &recorder{}
		e, _ := newMemEngine(t, compile(t, `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: bot
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: free
    rate_limit: {unlimited: true}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
`), &Options{Observer: obs})
		req := &Request{Domain: "api", Hits: 1, Descriptors: []Descriptor{
			desc("user", "u"), desc("bot", "b"), desc("free", "x"), desc("nothing", "x"), withHits(desc("blocked", "z"), 0),
		}}
		for range 2 {
			resp, err := e.Decide(t.Context(), req)
			if err != nil {
				t.Fatalf("Decide: got error %v, want none", err)
			}
			e.Served("grpc", resp.Outcome())
		}
		want := []string{
			"api [{user u}] hits 1: OK 1/MINUTE remaining 0",
			"api [{bot b}] hits 1: OK 5/MINUTE remaining 4",
			"api [{nothing x}] hits 1: OK - remaining 0 unmatched",
			"api [{blocked z}] hits 0: OK 0/MINUTE remaining 0",
			"api [{user u}] hits 1: OVER_LIMIT 1/MINUTE remaining 0",
			"api [{bot b}] hits 1: OK 5/MINUTE remaining 4",
			"api [{nothing x}] hits 1: OK - remaining 0 unmatched",
			"api [{blocked z}] hits 0: OK 0/MINUTE remaining 0",
			"latency",
			"latency",
			"grpc OK",
			"grpc OVER_LIMIT",
		}
		if got := obs.events(); !slices.Equal(got, want) {
			t.Errorf("observer events:\ngot  %q\nwant %q", got, want)
		}
	})
}

// failingStore fails every call.
type failingStore struct{}

var errBackend = errors.New("backend down")

func (failingStore) Take(context.Context, string, ratelimit.Algorithm, ratelimit.Limit, int) (ratelimit.Result, error) {
	return ratelimit.Result{}, errBackend
}

func (failingStore) Reset(context.Context, string, ratelimit.Algorithm) error { return errBackend }

func TestStoreFailure(t *testing.T) {
	obs := &recorder{}
	e := New(failingStore{}, compile(t, headerRules), &Options{Observer: obs})
	ctx := context.Background()
	resp, err := e.Decide(ctx, &Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u")}})
	if !errors.Is(err, errBackend) || resp != nil {
		t.Errorf("Decide: got %v, %v, want nil and the store's error", resp, err)
	}
	// Two limits on a store that cannot take them together: checked, then taken one by one.
	if _, err := e.Decide(ctx, &Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u"), desc("ip", "1")}}); !errors.Is(err, errBackend) {
		t.Errorf("Decide of two limits: got %v, want the store's error", err)
	}
	// A failed decision is reported, and timed like any other.
	if got, want := obs.events(), []string{"api: backend down", "api: backend down", "latency", "latency"}; !slices.Equal(got, want) {
		t.Errorf("observer events: got %q, want %q", got, want)
	}
	// A request with nothing to ask the store is decided anyway.
	resp, err = e.Decide(ctx, &Request{Domain: "api", Descriptors: []Descriptor{desc("free", "x"), desc("nothing", "y")}})
	if err != nil || resp.Code != OK {
		t.Errorf("Decide without a limited descriptor: got %+v, %v, want OK", resp, err)
	}
	if _, err := e.Inspect(ctx, "api", desc("user", "u").Entries); !errors.Is(err, errBackend) {
		t.Errorf("Inspect: got %v, want the store's error", err)
	}
	if ok, err := e.Reset(ctx, "api", desc("user", "u").Entries); ok || !errors.Is(err, errBackend) {
		t.Errorf("Reset: got %t, %v, want false and the store's error", ok, err)
	}
}

// TestNonBatchStore checks the fallback for stores that cannot decide several limits at
// once: all-or-nothing still holds without concurrent callers.
func TestNonBatchStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, cs := newMemEngine(t, nil, nil)
		type plainStore struct{ ratelimit.Store }
		e := New(plainStore{cs}, compile(t, headerRules), nil)
		two := &Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u"), desc("ip", "1")}}
		var got []string
		for range 3 {
			resp, err := e.Decide(t.Context(), two)
			if err != nil {
				t.Fatalf("Decide: got error %v, want none", err)
			}
			got = append(got, resp.Code.String()+" "+strings.Join(describeAll(resp.Statuses), ", "))
		}
		want := []string{
			"OK OK 5/MINUTE [per_user] remaining 4, OK 2/MINUTE remaining 1",
			"OK OK 5/MINUTE [per_user] remaining 3, OK 2/MINUTE remaining 0",
			"OVER_LIMIT OK 5/MINUTE [per_user] remaining 3, OVER_LIMIT 2/MINUTE remaining 0",
		}
		if !slices.Equal(got, want) {
			t.Errorf("answers:\ngot  %q\nwant %q", got, want)
		}
		if cs.takeAlls != 0 {
			t.Errorf("TakeAll calls: got %d, want 0", cs.takeAlls)
		}
	})
}

// TestStoreUntouched checks that unlimited, replaced, unmatched and zero rules never reach
// the store.
func TestStoreUntouched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, cs := newMemEngine(t, compile(t, `
domain: api
descriptors:
  - key: free
    rate_limit: {unlimited: true}
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1, name: per_user}
  - key: plan
    rate_limit: {unlimited: true, replaces: [{name: per_user}]}
  - key: blocked
    rate_limit: {unit: minute, requests_per_unit: 0}
`), nil)
		for _, descs := range [][]Descriptor{
			{desc("free", "x")},
			{desc("free", "x"), desc("nothing", "y")},
			{desc("user", "u"), desc("plan", "p")},
			{desc("blocked", "z")},
		} {
			for range 3 {
				resp, err := e.Decide(t.Context(), &Request{Domain: "api", Descriptors: descs})
				if err != nil {
					t.Fatalf("Decide: got error %v, want none", err)
				}
				if resp.Code == OverLimit && descs[0].Entries[0].Key != "blocked" {
					t.Errorf("Decide(%v): got OVER_LIMIT, want OK", descs)
				}
			}
		}
		if got := cs.calls(); got != 0 {
			t.Errorf("store calls: got %d, want 0", got)
		}
	})
}

// TestMaxEntriesIsRuleDepth: the rules accept no descriptor deeper than a request's
// entries can reach.
func TestMaxEntriesIsRuleDepth(t *testing.T) {
	if MaxEntries != rules.MaxDepth {
		t.Errorf("MaxEntries %d, rules.MaxDepth %d: want them equal", MaxEntries, rules.MaxDepth)
	}
}
