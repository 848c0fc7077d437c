package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
)

const apiYAML = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: ip
    detailed_metric: true
    rate_limit: {unit: minute, requests_per_unit: 100}
  - key: path
    shadow_mode: true
    rate_limit: {unit: hour, requests_per_unit: 5}
`

const webYAML = `
domain: web
descriptors:
  - key: page
    rate_limit: {unit: second, requests_per_unit: 1}
`

// compile builds a rule set of one file per YAML text, failing t on any error.
var compile = rulestest.Compile

// rule returns the rule of domain whose ID is id.
func rule(t testing.TB, set *rules.Set, domain, id string) *rules.Rule {
	t.Helper()
	d, ok := set.Domain(domain)
	if !ok {
		t.Fatalf("no domain %q", domain)
	}
	for _, r := range d.Rules {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no rule %q in %q", id, domain)
	return nil
}

// scrape fetches the metrics over HTTP and returns every sample by its series as the text
// format writes it: name{label="value",...}.
func scrape(t *testing.T, srv *httptest.Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %s: %s", resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return out
}

func series(name, domain, rule string) string {
	return fmt.Sprintf(`%s{domain=%q,rule=%q}`, name, domain, rule)
}

// check compares the samples named in want with got, got before want.
func check(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok && w != 0:
			t.Errorf("%s missing, want %v", k, w)
		case ok && g != w:
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}

func newServer(t *testing.T, m *Metrics) *httptest.Server {
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestDecided(t *testing.T) {
	set := compile(t, apiYAML)
	m := New()
	m.Loaded(set)
	srv := newServer(t, m)
	user := rule(t, set, "api", "api.user")
	path := rule(t, set, "api", "api.path")
	ents := []rules.Entry{{Key: "user", Value: "alice"}}

	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: user, Remaining: 7}, 3)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: user, Remaining: 1}, 2)
	m.Decided("api", ents, &engine.Status{Code: engine.OverLimit, Rule: user}, 4)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: path, Shadow: true}, 5)
	m.Decided("api", ents, &engine.Status{Code: engine.OK}, 1) // no rule: ignored
	m.Decided("api", ents, nil, 1)

	got := scrape(t, srv)
	check(t, got, map[string]float64{
		series("ratelimitd_rule_hits_total", "api", "api.user"):       9,
		series("ratelimitd_rule_calls_total", "api", "api.user"):      3,
		series("ratelimitd_rule_over_limit_total", "api", "api.user"): 4,
		// 2 hits leaving 1 of 10: the used units went from 7 to 9, 1 of them beyond 8.
		series("ratelimitd_rule_near_limit_total", "api", "api.user"): 1,
		series("ratelimitd_rule_shadow_total", "api", "api.user"):     0,
		series("ratelimitd_rule_hits_total", "api", "api.path"):       5,
		series("ratelimitd_rule_over_limit_total", "api", "api.path"): 5,
		series("ratelimitd_rule_shadow_total", "api", "api.path"):     5,
		series("ratelimitd_rule_near_limit_total", "api", "api.path"): 0,
		`ratelimitd_rules`:   3,
		`ratelimitd_domains`: 1,
	})
	// Every rule of the loaded set has its series from the start, the override too.
	for _, s := range []string{
		series("ratelimitd_rule_calls_total", "api", "api.path"),
		series("ratelimitd_rule_calls_total", "api", "api.override"),
	} {
		if _, ok := got[s]; !ok {
			t.Errorf("%s missing", s)
		}
	}
	if _, ok := got[series("ratelimitd_rule_calls_total", "api", "api.ip")]; ok {
		t.Errorf("the detailed rule api.ip has an undetailed series")
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
}

func TestUnknownDomain(t *testing.T) {
	set := compile(t, apiYAML)
	m := New()
	srv := newServer(t, m)
	user := rule(t, set, "api", "api.user")
	ents := []rules.Entry{{Key: "user", Value: "alice"}}

	// Before Loaded every domain is unknown.
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: user}, 1)
	m.Loaded(set)
	for i := range 50 {
		d := fmt.Sprintf("made-up-%d", i)
		m.Decided(d, ents, &engine.Status{Code: engine.OK, Rule: &rules.Rule{ID: d + ".user", Domain: d, Detailed: true}}, 1)
		m.Failed(d, errors.New("store down"))
		m.Latency(d, time.Millisecond)
	}
	m.Failed("api", errors.New("store down"))
	m.Latency("api", 30*time.Microsecond)

	got := scrape(t, srv)
	check(t, got, map[string]float64{
		series("ratelimitd_rule_calls_total", "unknown", "unknown"):              51,
		series("ratelimitd_rule_calls_total", "api", "api.user"):                 0,
		`ratelimitd_store_errors_total{domain="unknown"}`:                        50,
		`ratelimitd_store_errors_total{domain="api"}`:                            1,
		`ratelimitd_decide_duration_seconds_count{domain="unknown"}`:             50,
		`ratelimitd_decide_duration_seconds_bucket{domain="unknown",le="0.001"}`: 50,
		`ratelimitd_decide_duration_seconds_bucket{domain="api",le="5e-05"}`:     1,
	})
	for k := range got {
		if strings.Contains(k, "made-up") {
			t.Errorf("a request's domain became a label value: %s", k)
		}
	}
}

func TestDetailedCap(t *testing.T) {
	set := compile(t, apiYAML)
	m := New()
	m.Loaded(set)
	srv := newServer(t, m)
	ip := rule(t, set, "api", "api.ip")
	for i := range 1000 {
		ents := []rules.Entry{{Key: "ip", Value: fmt.Sprintf("10.0.%d.%d", i/256, i%256)}}
		m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: ip}, 2)
	}
	// A value already counted keeps its own series.
	m.Decided("api", []rules.Entry{{Key: "ip", Value: "10.0.0.0"}}, &engine.Status{Code: engine.OK, Rule: ip}, 2)

	got := scrape(t, srv)
	n, calls := 0, 0.0
	for k, v := range got {
		if strings.HasPrefix(k, "ratelimitd_rule_calls_total{") && strings.Contains(k, `domain="api"`) && strings.Contains(k, `rule="api.ip`) {
			n++
			calls += v
		}
	}
	if n != MaxDetailed+1 {
		t.Errorf("api.ip has %d series, want %d", n, MaxDetailed+1)
	}
	if calls != 1001 {
		t.Errorf("api.ip calls sum to %v, want 1001", calls)
	}
	check(t, got, map[string]float64{
		series("ratelimitd_rule_calls_total", "api", "api.ip_10.0.0.0"):         2,
		series("ratelimitd_rule_hits_total", "api", "api.ip_10.0.0.0"):          4,
		series("ratelimitd_rule_calls_total", "api", "api.ip.other"):            900,
		series("ratelimitd_rule_hits_total", "api", "api.ip.other"):             1800,
		series("ratelimitd_rule_detailed_overflow_total", "api", "api.ip"):      900,
		series("ratelimitd_rule_calls_total", "api", "api.ip_10.0.0.99"):        1,
		series("ratelimitd_rule_calls_total", "api", "api.ip_10.0.0.100"):       0,
		series("ratelimitd_rule_detailed_overflow_total", "api", "api.user"):    0,
		series("ratelimitd_rule_calls_total", "api", "api.ip_10.0.0.100.other"): 0,
	})
	if _, ok := got[series("ratelimitd_rule_calls_total", "api", "api.ip_10.0.0.100")]; ok {
		t.Errorf("value 101 got its own series")
	}
}

func TestDetailedLabel(t *testing.T) {
	set := compile(t, `
domain: api
descriptors:
  - key: a
    descriptors:
      - key: b
        detailed_metric: true
        rate_limit: {unit: second, requests_per_unit: 1}
`)
	m := New()
	m.Loaded(set)
	srv := newServer(t, m)
	r := rule(t, set, "api", "api.a.b")
	m.Decided("api", []rules.Entry{{Key: "a", Value: "x"}, {Key: "b"}}, &engine.Status{Code: engine.OK, Rule: r}, 1)
	long := strings.Repeat("é", MaxDetailedLen) // cut in the middle of a rune
	m.Decided("api", []rules.Entry{{Key: "a", Value: long}, {Key: "b", Value: "\xff"}}, &engine.Status{Code: engine.OK, Rule: r}, 1)

	m.Decided("api", []rules.Entry{{Key: "a", Value: "\xff"}, {Key: "b"}}, &engine.Status{Code: engine.OK, Rule: r}, 1)

	got := scrape(t, srv)
	check(t, got, map[string]float64{
		series("ratelimitd_rule_calls_total", "api", "api.a_x.b"):      1,
		series("ratelimitd_rule_calls_total", "api", "api.a_\uFFFD.b"): 1,
	})
	found := false
	for k := range got {
		if !strings.HasPrefix(k, "ratelimitd_rule_calls_total{") || !strings.Contains(k, "éé") {
			continue
		}
		found = true
		v := k[strings.Index(k, `rule="`)+len(`rule="`) : len(k)-len(`"}`)]
		// A rune cut at the limit becomes one U+FFFD: at most 2 bytes more.
		if len(v) > MaxDetailedLen+2 {
			t.Errorf("detailed label of %d bytes, want at most %d", len(v), MaxDetailedLen)
		}
	}
	if !found {
		t.Errorf("no series for the long value")
	}
}

func TestLoads(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	m.LoadFailed()
	got := scrape(t, srv)
	check(t, got, map[string]float64{
		`ratelimitd_config_loads_total{result="failure"}`:  1,
		`ratelimitd_config_loads_total{result="success"}`:  0,
		`ratelimitd_config_last_load_failed`:               1,
		`ratelimitd_config_last_success_timestamp_seconds`: 0,
	})

	before := float64(time.Now().Unix())
	m.Loaded(compile(t, apiYAML, webYAML))
	got = scrape(t, srv)
	check(t, got, map[string]float64{
		`ratelimitd_config_loads_total{result="failure"}`: 1,
		`ratelimitd_config_loads_total{result="success"}`: 1,
		`ratelimitd_config_last_load_failed`:              0,
		`ratelimitd_rules`:                                4,
		`ratelimitd_domains`:                              2,
	})
	if ts := got[`ratelimitd_config_last_success_timestamp_seconds`]; ts < before || ts > before+60 {
		t.Errorf("last success timestamp = %v, want about %v", ts, before)
	}
	m.Loaded(nil) // ignored
	check(t, scrape(t, srv), map[string]float64{`ratelimitd_config_loads_total{result="success"}`: 1})
}

// TestReloadDropsSeries checks that a load keeps the counters of the rules it keeps and
// deletes the series of the domains and rules it drops.
func TestReloadDropsSeries(t *testing.T) {
	set := compile(t, apiYAML, webYAML)
	m := New()
	m.Loaded(set)
	srv := newServer(t, m)
	user, ip, page := rule(t, set, "api", "api.user"), rule(t, set, "api", "api.ip"), rule(t, set, "web", "web.page")
	m.Decided("api", []rules.Entry{{Key: "user", Value: "u"}}, &engine.Status{Code: engine.OK, Rule: user}, 1)
	m.Decided("api", []rules.Entry{{Key: "ip", Value: "1"}}, &engine.Status{Code: engine.OK, Rule: ip}, 1)
	m.Decided("web", []rules.Entry{{Key: "page", Value: "p"}}, &engine.Status{Code: engine.OK, Rule: page}, 1)
	m.Latency("web", time.Millisecond)

	// api keeps user, loses ip and path; web goes.
	set2 := compile(t, `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: second, requests_per_unit: 20}
`)
	m.Loaded(set2)
	// A request decided on the old set after the load counts under its rule, until the
	// next load drops it.
	m.Decided("api", []rules.Entry{{Key: "ip", Value: "2"}}, &engine.Status{Code: engine.OK, Rule: ip}, 1)
	m.Decided("web", []rules.Entry{{Key: "page", Value: "p"}}, &engine.Status{Code: engine.OK, Rule: page}, 1)
	got := scrape(t, srv)
	check(t, got, map[string]float64{
		series("ratelimitd_rule_calls_total", "api", "api.user"):    1,
		series("ratelimitd_rule_calls_total", "unknown", "unknown"): 1,
		series("ratelimitd_rule_calls_total", "api", "api.ip_1"):    0,
		series("ratelimitd_rule_calls_total", "api", "api.ip_2"):    1,
		series("ratelimitd_rule_calls_total", "api", "api.path"):    0,
		`ratelimitd_decide_duration_seconds_count{domain="web"}`:    0,
		series("ratelimitd_rule_calls_total", "web", "web.page"):    0,
		`ratelimitd_domains`: 1,
	})
	for k := range got {
		if strings.Contains(k, `domain="web"`) || strings.Contains(k, `"api.path"`) || strings.Contains(k, `"api.ip_1"`) {
			t.Errorf("series of a dropped rule remains: %s", k)
		}
	}
	m.Loaded(set2)
	for k := range scrape(t, srv) {
		if strings.Contains(k, `"api.ip_2"`) {
			t.Errorf("series of a dropped rule remains: %s", k)
		}
	}
}

// TestDetailedFlip checks that a rule turning detailed_metric on or off keeps only the
// series of its new kind.
func TestDetailedFlip(t *testing.T) {
	plain := compile(t, "domain: api\ndescriptors:\n  - key: ip\n    rate_limit: {unit: second, requests_per_unit: 1}\n")
	detailed := compile(t, "domain: api\ndescriptors:\n  - key: ip\n    detailed_metric: true\n    rate_limit: {unit: second, requests_per_unit: 1}\n")
	m := New()
	srv := newServer(t, m)
	ents := []rules.Entry{{Key: "ip", Value: "1"}}
	m.Loaded(plain)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: rule(t, plain, "api", "api.ip")}, 1)
	m.Loaded(detailed)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: rule(t, detailed, "api", "api.ip")}, 1)
	got := scrape(t, srv)
	if _, ok := got[series("ratelimitd_rule_calls_total", "api", "api.ip")]; ok {
		t.Errorf("the undetailed series remains after detailed_metric was turned on")
	}
	check(t, got, map[string]float64{series("ratelimitd_rule_calls_total", "api", "api.ip_1"): 1})
	m.Loaded(plain)
	got = scrape(t, srv)
	if _, ok := got[series("ratelimitd_rule_calls_total", "api", "api.ip_1")]; ok {
		t.Errorf("the detailed series remains after detailed_metric was turned off")
	}
	if _, ok := got[series("ratelimitd_rule_calls_total", "api", "api.ip")]; !ok {
		t.Errorf("no undetailed series after detailed_metric was turned off")
	}
}

func TestOverride(t *testing.T) {
	m := New()
	m.Loaded(compile(t, apiYAML))
	srv := newServer(t, m)
	for range 3 {
		// The engine makes a new rule for each request that carries a limit.
		o := &rules.Rule{ID: "api.override", Domain: "api"}
		m.Decided("api", []rules.Entry{{Key: "user", Value: "x"}}, &engine.Status{Code: engine.OverLimit, Rule: o}, 1)
	}
	check(t, scrape(t, srv), map[string]float64{
		series("ratelimitd_rule_over_limit_total", "api", "api.override"): 3,
	})
}

func TestServed(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	m.Served("grpc", engine.OutcomeOK)
	m.Served("grpc", engine.OutcomeOK)
	m.Served("json", engine.OutcomeOverLimit)
	m.Served("http", engine.OutcomeInvalid)
	m.Served("smtp", engine.OutcomeOK)
	m.Served("grpc", engine.Outcome(0))
	m.Served("smtp", engine.OutcomeError)
	check(t, scrape(t, srv), map[string]float64{
		`ratelimitd_requests_total{code="OK",transport="grpc"}`:         2,
		`ratelimitd_requests_total{code="OVER_LIMIT",transport="json"}`: 1,
		`ratelimitd_requests_total{code="INVALID",transport="http"}`:    1,
		`ratelimitd_requests_total{code="ERROR",transport="http"}`:      0,
		`ratelimitd_requests_total{code="OK",transport="other"}`:        1,
		`ratelimitd_requests_total{code="other",transport="grpc"}`:      1,
		`ratelimitd_requests_total{code="ERROR",transport="other"}`:     1,
	})
}

// TestConcurrent races decisions on many values against loads; run with -race.
func TestConcurrent(t *testing.T) {
	set := compile(t, apiYAML, webYAML)
	set2 := compile(t, apiYAML)
	m := New()
	m.Loaded(set)
	srv := newServer(t, m)
	user, ip, page := rule(t, set, "api", "api.user"), rule(t, set, "api", "api.ip"), rule(t, set, "web", "web.page")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				v := strconv.Itoa(g*1000 + i)
				m.Decided("api", []rules.Entry{{Key: "user", Value: v}}, &engine.Status{Code: engine.OK, Rule: user}, 1)
				m.Decided("api", []rules.Entry{{Key: "ip", Value: v}}, &engine.Status{Code: engine.OK, Rule: ip}, 1)
				m.Decided("web", []rules.Entry{{Key: "page", Value: v}}, &engine.Status{Code: engine.OK, Rule: page}, 1)
				m.Latency("api", time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if i%2 == 0 {
				m.Loaded(set2)
			} else {
				m.Loaded(set)
			}
		}
	})
	wg.Wait()
	m.Loaded(set)
	n := 0
	for k := range scrape(t, srv) {
		if strings.HasPrefix(k, "ratelimitd_rule_calls_total{") && strings.Contains(k, `rule="api.ip`) {
			n++
		}
	}
	if n > MaxDetailed+1 {
		t.Errorf("api.ip has %d series, want at most %d", n, MaxDetailed+1)
	}
}

// BenchmarkDecided measures the hot path on a plain rule and on a detailed rule whose
// values already have their series, over many pre-generated descriptors.
func BenchmarkDecided(b *testing.B) {
	set := compile(b, apiYAML)
	m := New()
	m.Loaded(set)
	const keys = 4096
	for _, bc := range []struct {
		name string
		rule *rules.Rule
		vals int
	}{
		{"rule", rule(b, set, "api", "api.user"), keys},
		{"detailed", rule(b, set, "api", "api.ip"), MaxDetailed},
		{"detailed-overflow", rule(b, set, "api", "api.ip"), keys},
	} {
		ents := make([][]rules.Entry, keys)
		for i := range ents {
			ents[i] = []rules.Entry{{Key: bc.rule.ID[len("api."):], Value: fmt.Sprintf("value-%d", i%bc.vals)}}
		}
		st := &engine.Status{Code: engine.OK, Rule: bc.rule, Remaining: 5}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					m.Decided("api", ents[i%keys], st, 1)
					i++
				}
			})
		})
	}
	// For comparison: the two counters of a plain decision looked up per call.
	b.Run("uncached-WithLabelValues", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.hits.WithLabelValues("api", "api.user").Add(1)
				m.calls.WithLabelValues("api", "api.user").Inc()
			}
		})
	})
}

// TestSharedSeries: a series two holders share outlives the one that lets it go.
func TestSharedSeries(t *testing.T) {
	t.Run("domain named unknown", func(t *testing.T) {
		m := New()
		srv := newServer(t, m)
		m.Loaded(compile(t, "domain: unknown\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n"))
		m.Loaded(compile(t, webYAML)) // drops the domain "unknown"
		m.Failed("made-up", errors.New("store down"))
		m.Latency("made-up", time.Millisecond)
		check(t, scrape(t, srv), map[string]float64{
			`ratelimitd_store_errors_total{domain="unknown"}`:            1,
			`ratelimitd_decide_duration_seconds_count{domain="unknown"}`: 1,
		})
	})
	t.Run("detailed label equal to a rule ID", func(t *testing.T) {
		const file = `
domain: api
descriptors:
  - key: user
    detailed_metric: %v
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: user_alice
    rate_limit: {unit: second, requests_per_unit: 1}
`
		m := New()
		srv := newServer(t, m)
		set := compile(t, fmt.Sprintf(file, true))
		m.Loaded(set)
		alice := []rules.Entry{{Key: "user", Value: "alice"}} // labelled api.user_alice
		m.Decided("api", alice, &engine.Status{Code: engine.OK, Rule: rule(t, set, "api", "api.user")}, 1)
		other := []rules.Entry{{Key: "user_alice", Value: "x"}}
		m.Decided("api", other, &engine.Status{Code: engine.OK, Rule: rule(t, set, "api", "api.user_alice")}, 1)
		check(t, scrape(t, srv), map[string]float64{series("ratelimitd_rule_calls_total", "api", "api.user_alice"): 2})

		// Turning detailed_metric off drops api.user's detailed series; api.user_alice's stay.
		set = compile(t, fmt.Sprintf(file, false))
		m.Loaded(set)
		m.Decided("api", other, &engine.Status{Code: engine.OK, Rule: rule(t, set, "api", "api.user_alice")}, 1)
		check(t, scrape(t, srv), map[string]float64{series("ratelimitd_rule_calls_total", "api", "api.user_alice"): 3})
	})
	t.Run("two rules of one ID", func(t *testing.T) {
		const file = `
domain: api
descriptors:
  - key: a_b
    rate_limit: {unit: second, requests_per_unit: 1}
  - key: a
    value: b
    rate_limit: {unit: second, requests_per_unit: 1}
`
		m := New()
		srv := newServer(t, m)
		m.Loaded(compile(t, file))
		m.Loaded(compile(t, webYAML))
		if _, ok := scrape(t, srv)[series("ratelimitd_rule_calls_total", "api", "api.a_b")]; ok {
			t.Errorf("the series of api.a_b outlive their domain")
		}
	})
}

// TestDetailedDomainDropped: a detailed rule decided while a load drops its domain counts
// under unknown, without labelling unknown's series by the request's values.
func TestDetailedDomainDropped(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	m.Loaded(compile(t, apiYAML))
	stale := m.state.Load()
	m.Loaded(compile(t, webYAML)) // drops api while a request of api is being counted
	// A rule the stale state lacks too: a request decided on rules newer than it.
	ents := []rules.Entry{{Key: "account", Value: "alice"}}
	r := &rules.Rule{ID: "api.account", Domain: "api", Detailed: true}
	m.decided(stale, "api", ents, &engine.Status{Code: engine.OK, Rule: r}, 1)
	got := scrape(t, srv)
	check(t, got, map[string]float64{series("ratelimitd_rule_calls_total", "unknown", "unknown"): 1})
	for k := range got {
		if strings.Contains(k, "alice") {
			t.Errorf("a request's value became a label value: %s", k)
		}
	}
}

// TestDetailedFlipStale: a request decided on the rules before a load that turned
// detailed_metric on or off counts in the series of the rule as loaded, and brings back
// none of the series the load deleted.
func TestDetailedFlipStale(t *testing.T) {
	plain := compile(t, "domain: api\ndescriptors:\n  - key: ip\n    rate_limit: {unit: second, requests_per_unit: 1}\n")
	detailed := compile(t, "domain: api\ndescriptors:\n  - key: ip\n    detailed_metric: true\n    rate_limit: {unit: second, requests_per_unit: 1}\n")
	m := New()
	srv := newServer(t, m)
	ents := []rules.Entry{{Key: "ip", Value: "1"}}
	base, byValue := series("ratelimitd_rule_calls_total", "api", "api.ip"), series("ratelimitd_rule_calls_total", "api", "api.ip_1")

	m.Loaded(detailed)
	m.Loaded(plain)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: rule(t, detailed, "api", "api.ip")}, 1)
	got := scrape(t, srv)
	if _, ok := got[byValue]; ok {
		t.Errorf("detailed_metric off: a request decided before the load brought back %s", byValue)
	}
	check(t, got, map[string]float64{base: 1})

	m.Loaded(detailed)
	m.Decided("api", ents, &engine.Status{Code: engine.OK, Rule: rule(t, plain, "api", "api.ip")}, 1)
	got = scrape(t, srv)
	if _, ok := got[base]; ok {
		t.Errorf("detailed_metric on: a request decided before the load brought back %s", base)
	}
	check(t, got, map[string]float64{byValue: 1})
}

// TestUnmatched: descriptors no rule matched count per loaded domain, and under
// "unknown" for every other domain, so requests cannot add series; a load that drops a
// domain drops its series.
func TestUnmatched(t *testing.T) {
	m := New()
	srv := newServer(t, m)
	m.Loaded(compile(t, apiYAML, webYAML))
	ents := []rules.Entry{{Key: "nobody", Value: "x"}}
	for range 3 {
		m.Decided("api", ents, &engine.Status{Code: engine.OK, Unmatched: true}, 1)
	}
	m.Decided("web", ents, &engine.Status{Code: engine.OK, Unmatched: true}, 1)
	for i := range 40 {
		m.Decided(fmt.Sprintf("made-up-%d", i), ents, &engine.Status{Code: engine.OK, Unmatched: true}, 1)
	}
	m.Decided("api", ents, &engine.Status{Code: engine.OK}, 1) // neither a rule nor unmatched: ignored
	got := scrape(t, srv)
	check(t, got, map[string]float64{
		`ratelimitd_unmatched_total{domain="api"}`:     3,
		`ratelimitd_unmatched_total{domain="web"}`:     1,
		`ratelimitd_unmatched_total{domain="unknown"}`: 40,
	})
	n := 0
	for k := range got {
		if strings.HasPrefix(k, "ratelimitd_unmatched_total") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d series of ratelimitd_unmatched_total, want 3 (api, web, unknown)", n)
	}
	m.Loaded(compile(t, apiYAML))
	if _, ok := scrape(t, srv)[`ratelimitd_unmatched_total{domain="web"}`]; ok {
		t.Error("the series of a dropped domain is still served")
	}
}
