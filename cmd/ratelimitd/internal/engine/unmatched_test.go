package engine

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestUnmatched: a descriptor no rule matches, and every descriptor of an unknown domain,
// is allowed with no rule, as envoyproxy/ratelimit allows it, and says so in the Status
// and the Response.
func TestUnmatched(t *testing.T) {
	e, store := newMemEngine(t, compile(t, `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: free
    rate_limit: {unlimited: true}
`), nil)
	for _, c := range []struct {
		domain        string
		descs         []Descriptor
		unknownDomain bool
		unmatched     []bool
		want          []string
	}{
		{"api", []Descriptor{desc("user", "a"), desc("nobody", "x"), desc("free", "y")}, false,
			[]bool{false, true, false}, []string{"OK 1/MINUTE remaining 0", "OK - remaining 0", "OK - remaining 4294967295"}},
		{"api", []Descriptor{desc("user", "a", "extra", "z")}, false, []bool{true}, []string{"OK - remaining 0"}},
		{"typo", []Descriptor{desc("user", "a"), desc("free", "y")}, true, []bool{true, true}, []string{"OK - remaining 0", "OK - remaining 0"}},
	} {
		resp, err := e.Decide(t.Context(), &Request{Domain: c.domain, Descriptors: c.descs})
		if err != nil {
			t.Fatalf("Decide(%s): error %v", c.domain, err)
		}
		var unmatched []bool
		for _, st := range resp.Statuses {
			unmatched = append(unmatched, st.Unmatched)
		}
		if got := describeAll(resp.Statuses); resp.Code != OK || !slices.Equal(got, c.want) || !slices.Equal(unmatched, c.unmatched) || resp.UnknownDomain != c.unknownDomain {
			t.Errorf("Decide(%s %v) = %v %q, unmatched %v, unknown domain %v; want OK %q, unmatched %v, unknown domain %v",
				c.domain, c.descs, resp.Code, got, unmatched, resp.UnknownDomain, c.want, c.unmatched, c.unknownDomain)
		}
	}
	if n := store.calls(); n != 1 {
		t.Errorf("store calls: got %d, want 1 (only the matched user rule)", n)
	}
}

// TestUnmatchedLog: at debug level a request with an unmatched descriptor logs a line
// naming its domain and entries, at most one a second, each counting the requests not
// logged before it; at info level nothing is logged.
func TestUnmatchedLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := compile(t, "domain: api\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 100}\n")
		var debug, info bytes.Buffer
		ed, _ := newMemEngine(t, set, &Options{Logger: slog.New(slog.NewJSONHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		ei, _ := newMemEngine(t, set, &Options{Logger: slog.New(slog.NewJSONHandler(&info, nil))})
		decide := func(domain string, descs ...Descriptor) {
			for _, e := range []*Engine{ed, ei} {
				if _, err := e.Decide(t.Context(), &Request{Domain: domain, Descriptors: descs}); err != nil {
					t.Fatalf("Decide: error %v", err)
				}
			}
		}
		decide("api", desc("user", "a"))                       // matched: no line
		decide("api", desc("user", "a"), desc("path", "/x y")) // logged
		decide("web", desc("page", "home"))                    // within the second: counted
		decide("web", desc("page", "home"))                    // counted
		time.Sleep(time.Second)
		decide("web", desc("page", "home"), desc("user", "b")) // logged, with 2 unlogged
		decide("api", desc("user", "c"))                       // matched: no line

		type line struct {
			Level, Msg, Domain, Entries      string
			KnownDomain                      bool `json:"known_domain"`
			Unmatched, Descriptors, Unlogged int
		}
		var got []line
		for _, b := range bytes.Split(bytes.TrimSpace(debug.Bytes()), []byte("\n")) {
			var l line
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatalf("log line %q: %v", b, err)
			}
			got = append(got, l)
		}
		want := []line{
			{"DEBUG", "no rule matched; allowed", "api", `path="/x y"`, true, 1, 2, 0},
			{"DEBUG", "no rule matched; allowed", "web", `page="home"`, false, 2, 2, 2},
		}
		if !slices.Equal(got, want) {
			t.Errorf("debug log:\ngot  %+v\nwant %+v", got, want)
		}
		if info.Len() != 0 {
			t.Errorf("info log: got %q, want nothing", info.String())
		}
	})
}
