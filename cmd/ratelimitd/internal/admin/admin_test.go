package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit/memorystore"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

const rulesYAML = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 5}
  - key: path
    value: /search
    rate_limit: {name: search, period: 5m, requests_per_unit: 10, algorithm: token_bucket, burst: 3}
  - key: internal
    rate_limit: {unlimited: true}
`

type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	eng     *engine.Engine
	token   string
	mu      sync.Mutex // guards changes and logs, written by the server's goroutines
	changes []*rules.Set
	logs    bytes.Buffer
}

func (f *fixture) changed() []*rules.Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

func (f *fixture) logged() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs.String()
}

func newFixture(t *testing.T, opts *Options) *fixture {
	t.Helper()
	set, err := rules.Compile([]rules.Source{{Name: "t.yaml", Data: []byte(rulesYAML)}})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	st := memorystore.New(nil)
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, eng: engine.New(st, set, nil)}
	if opts == nil {
		opts = &Options{}
	}
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&f.mu, &f.logs}, nil))
	opts.OnChange = func(s *rules.Set) {
		f.mu.Lock()
		f.changes = append(f.changes, s)
		f.mu.Unlock()
	}
	f.token = opts.Token
	f.srv = httptest.NewServer(Handler(f.eng, opts))
	t.Cleanup(f.srv.Close)
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do sends a request with the fixture's token and decodes the JSON answer into out
// (when not nil); it returns the status.
func (f *fixture) do(method, path, body string, out any) int {
	f.t.Helper()
	resp := f.raw(method, path, body, f.token)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (f *fixture) raw(method, path, body, token string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "PUT" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (f *fixture) decide(domain string, entries ...rules.Entry) *engine.Response {
	f.t.Helper()
	resp, err := f.eng.Decide(context.Background(), &engine.Request{Domain: domain, Descriptors: []engine.Descriptor{{Entries: entries}}})
	if err != nil {
		f.t.Fatalf("Decide: %v", err)
	}
	return resp
}

type errorAnswer struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors"`
}

func TestToken(t *testing.T) {
	f := newFixture(t, &Options{Token: "s3cret"})
	for _, tc := range []struct {
		name, header  string
		want          int
		wantChallenge string
	}{
		{"missing", "", http.StatusUnauthorized, `Bearer realm="ratelimitd admin"`},
		{"other scheme", "Basic czNjcmV0", http.StatusUnauthorized, `Bearer realm="ratelimitd admin"`},
		{"wrong", "Bearer s3cre", http.StatusUnauthorized, `Bearer realm="ratelimitd admin", error="invalid_token"`},
		{"longer", "Bearer s3cret2", http.StatusUnauthorized, `Bearer realm="ratelimitd admin", error="invalid_token"`},
		{"right", "Bearer s3cret", http.StatusOK, ""},
		{"scheme in lower case", "bearer s3cret", http.StatusOK, ""},
	} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/v1/rules", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e errorAnswer
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != tc.wantChallenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, tc.wantChallenge)
		}
		if tc.want == http.StatusUnauthorized && e.Error == "" {
			t.Errorf("%s: no JSON error", tc.name)
		}
	}
	// Every path is behind the token, unknown ones too.
	for _, p := range []string{"/", "/nope", "/v1/keys?domain=api&entry=user=a"} {
		resp := f.raw("GET", p, "", "")
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d, want 401", p, resp.StatusCode)
		}
	}
}

func TestIndexAndNotFound(t *testing.T) {
	f := newFixture(t, nil)
	var idx struct {
		Endpoints []endpoint `json:"endpoints"`
	}
	if code := f.do("GET", "/", "", &idx); code != http.StatusOK || len(idx.Endpoints) != len(endpoints) {
		t.Errorf("GET / = %d with %d endpoints, want 200 with %d", code, len(idx.Endpoints), len(endpoints))
	}
	var e errorAnswer
	if code := f.do("GET", "/v2/things", "", &e); code != http.StatusNotFound || e.Error == "" {
		t.Errorf("GET /v2/things = %d %q, want 404 with an error", code, e.Error)
	}
	resp := f.raw("POST", "/v1/rules", "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /v1/rules = %d Allow %q, want 405 Allow \"GET, HEAD\"", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if code := f.do("PATCH", "/v1/rules/api", "", &e); code != http.StatusMethodNotAllowed {
		t.Errorf("PATCH /v1/rules/api = %d, want 405", code)
	}
	if code := f.do("GET", "/v1/reload", "", &e); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/reload = %d, want 405", code)
	}
}

func TestListRules(t *testing.T) {
	f := newFixture(t, nil)
	var got struct {
		Domains []Domain `json:"domains"`
	}
	if code := f.do("GET", "/v1/rules", "", &got); code != http.StatusOK {
		t.Fatalf("GET /v1/rules = %d", code)
	}
	if len(got.Domains) != 1 || got.Domains[0].Name != "api" || got.Domains[0].Source != "t.yaml" {
		t.Fatalf("domains = %+v, want api from t.yaml", got.Domains)
	}
	want := []Rule{
		{ID: "api.user", Unit: "minute", RequestsPerUnit: 5, Period: "1m", Algorithm: "fixed_window", Replaces: []string{}},
		{ID: "api.path_/search", Name: "search", RequestsPerUnit: 10, Period: "5m", Algorithm: "token_bucket", Burst: 3, Replaces: []string{}},
		{ID: "api.internal", Unlimited: true, Replaces: []string{}},
	}
	gotRules := got.Domains[0].Rules
	if len(gotRules) != len(want) {
		t.Fatalf("rules = %+v, want %+v", gotRules, want)
	}
	for i := range want {
		if fmt.Sprint(gotRules[i]) != fmt.Sprint(want[i]) {
			t.Errorf("rule %d = %+v, want %+v", i, gotRules[i], want[i])
		}
	}
}

func TestGetRules(t *testing.T) {
	f := newFixture(t, nil)
	var file rules.File
	if code := f.do("GET", "/v1/rules/api", "", &file); code != http.StatusOK {
		t.Fatalf("GET /v1/rules/api = %d", code)
	}
	if file.Domain != "api" || len(file.Descriptors) != 3 || file.Descriptors[1].RateLimit.Algorithm != "token_bucket" {
		t.Errorf("file = %+v", file)
	}
	var e errorAnswer
	if code := f.do("GET", "/v1/rules/nope", "", &e); code != http.StatusNotFound || !strings.Contains(e.Error, "nope") {
		t.Errorf("GET /v1/rules/nope = %d %q, want 404 naming it", code, e.Error)
	}
	if code := f.do("GET", "/v1/rules/", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "missing domain") {
		t.Errorf("GET /v1/rules/ = %d %q, want 400 missing domain", code, e.Error)
	}
}

func TestPutRules(t *testing.T) {
	f := newFixture(t, nil)
	user := rules.Entry{Key: "user", Value: "alice"}
	for range 5 {
		f.decide("api", user)
	}
	if f.decide("api", user).Code != engine.OverLimit {
		t.Fatalf("6th request of 5 per minute allowed")
	}

	// Replace api, as JSON, without a domain: it comes from the path.
	body := `{"descriptors": [{"key": "user", "rate_limit": {"unit": "minute", "requests_per_unit": 100}}]}`
	var d Domain
	if code := f.do("PUT", "/v1/rules/api", body, &d); code != http.StatusOK {
		t.Fatalf("PUT /v1/rules/api = %d, want 200", code)
	}
	if d.Name != "api" || d.Source != "admin" || len(d.Rules) != 1 || d.Rules[0].RequestsPerUnit != 100 {
		t.Errorf("PUT answer = %+v", d)
	}
	if f.decide("api", user).Code != engine.OK {
		t.Errorf("Decide after raising the limit: over the limit")
	}
	if len(f.changed()) != 1 {
		t.Fatalf("OnChange called %d times, want 1", len(f.changed()))
	}
	if dom, _ := f.changed()[0].Domain("api"); dom.Source != "admin" {
		t.Errorf("OnChange got source %q, want admin", dom.Source)
	}

	// A new domain, as YAML: 201.
	yaml := "domain: web\ndescriptors:\n  - key: page\n    rate_limit: {unit: second, requests_per_unit: 1}\n"
	if code := f.do("PUT", "/v1/rules/web", yaml, &d); code != http.StatusCreated {
		t.Errorf("PUT /v1/rules/web = %d, want 201", code)
	}
	page := rules.Entry{Key: "page", Value: "/"}
	if f.decide("web", page).Code != engine.OK || f.decide("web", page).Code != engine.OverLimit {
		t.Errorf("the new domain web does not enforce 1 per second")
	}
	if !strings.Contains(f.logged(), "admin: rules set") || !strings.Contains(f.logged(), "domain=web") {
		t.Errorf("no log line for the change:\n%s", f.logged())
	}
}

func TestPutRulesRejected(t *testing.T) {
	f := newFixture(t, nil)
	before := f.eng.Rules()
	for _, tc := range []struct {
		name, path, body string
		want             int
		wantErrs         []string
	}{
		{"validation", "/v1/rules/api", `
domain: api
descriptors:
  - key: a
    rate_limit: {unit: fortnight, requests_per_unit: 1}
  - key: b
    rate_limit: {unit: second, requests_per_unit: 1, burst: 4}
`, http.StatusBadRequest, []string{"admin: line 5: descriptor 'api.a': invalid rate limit unit 'fortnight'", "admin: line 7: descriptor 'api.b': burst applies to token_bucket"}},
		{"unknown key", "/v1/rules/api", "domain: api\ndescriptors:\n  - key: a\n    rate_limt: {}\n", http.StatusBadRequest, []string{"unknown key 'rate_limt'"}},
		{"other domain", "/v1/rules/api", "domain: web\n", http.StatusBadRequest, []string{`the file's domain "web" is not the path's "api"`}},
		{"invalid JSON", "/v1/rules/api", `{"descriptors": [`, http.StatusBadRequest, []string{"admin: "}},
		{"invalid YAML", "/v1/rules/api", "domain: [api\n", http.StatusBadRequest, []string{"admin: "}},
		{"empty", "/v1/rules/api", "", http.StatusBadRequest, []string{"empty"}},
		{"two documents", "/v1/rules/api", "domain: api\n---\ndomain: api\n", http.StatusBadRequest, []string{"more than one YAML document"}},
		{"missing domain", "/v1/rules/", "domain: api\n", http.StatusBadRequest, []string{"missing domain"}},
		{"huge", "/v1/rules/api", "domain: api\n#" + strings.Repeat("x", MaxBody), http.StatusRequestEntityTooLarge, []string{"larger than 1048576 bytes"}},
	} {
		var e errorAnswer
		code := f.do("PUT", tc.path, tc.body, &e)
		if code != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, code, tc.want, e.Error)
		}
		for _, w := range tc.wantErrs {
			if !strings.Contains(e.Error, w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, e.Error, w)
			}
		}
		if len(tc.wantErrs) > 1 && len(e.Errors) < len(tc.wantErrs) {
			t.Errorf("%s: errors %q, want each one listed", tc.name, e.Errors)
		}
	}
	if f.eng.Rules() != before {
		t.Errorf("a rejected PUT changed the rules")
	}
	if len(f.changed()) != 0 {
		t.Errorf("OnChange called for a rejected PUT")
	}
}

func TestDeleteRules(t *testing.T) {
	f := newFixture(t, nil)
	var out struct {
		Domain  string `json:"domain"`
		Deleted bool   `json:"deleted"`
	}
	if code := f.do("DELETE", "/v1/rules/api", "", &out); code != http.StatusOK || !out.Deleted || out.Domain != "api" {
		t.Errorf("DELETE /v1/rules/api = %d %+v", code, out)
	}
	if _, ok := f.eng.Rules().Domain("api"); ok {
		t.Errorf("api still loaded")
	}
	if resp := f.decide("api", rules.Entry{Key: "user", Value: "a"}); resp.Statuses[0].Rule != nil {
		t.Errorf("a rule of the deleted domain still applies")
	}
	if len(f.changed()) != 1 {
		t.Errorf("OnChange called %d times, want 1", len(f.changed()))
	}
	var e errorAnswer
	if code := f.do("DELETE", "/v1/rules/api", "", &e); code != http.StatusNotFound {
		t.Errorf("second DELETE = %d, want 404", code)
	}
	if !strings.Contains(f.logged(), "admin: rules removed") {
		t.Errorf("no log line for the removal:\n%s", f.logged())
	}
}

func TestKeys(t *testing.T) {
	f := newFixture(t, nil)
	const q = "/v1/keys?domain=api&entry=user=alice"
	var ks KeyState
	if code := f.do("GET", q, "", &ks); code != http.StatusOK {
		t.Fatalf("GET %s = %d", q, code)
	}
	if ks.Rule == nil || ks.Rule.ID != "api.user" || ks.Remaining != 5 || ks.OverLimit {
		t.Fatalf("before any hit: %+v, want api.user with 5 remaining", ks)
	}
	for i := range 5 {
		f.decide("api", rules.Entry{Key: "user", Value: "alice"})
		if f.do("GET", q, "", &ks); ks.Remaining != uint32(4-i) {
			t.Errorf("after %d hits: remaining %d, want %d", i+1, ks.Remaining, 4-i)
		}
		if ks.ResetAfterMS <= 0 || ks.ResetAfterMS > 60_000 {
			t.Errorf("after %d hits: reset_after_ms %d, want within a minute", i+1, ks.ResetAfterMS)
		}
	}
	if !ks.OverLimit {
		t.Errorf("after 5 of 5 hits: over_limit false")
	}
	// Inspecting takes nothing.
	f.do("GET", "/v1/keys?domain=api&entry=user=bob", "", &ks)
	f.do("GET", "/v1/keys?domain=api&entry=user=bob", "", &ks)
	if ks.Remaining != 5 {
		t.Errorf("inspecting took units: remaining %d, want 5", ks.Remaining)
	}

	var reset struct {
		Reset bool `json:"reset"`
	}
	if code := f.do("DELETE", q, "", &reset); code != http.StatusOK || !reset.Reset {
		t.Errorf("DELETE %s = %d %+v, want 200 reset true", q, code, reset)
	}
	if f.do("GET", q, "", &ks); ks.Remaining != 5 || ks.OverLimit {
		t.Errorf("after reset: %+v, want 5 remaining", ks)
	}
	if f.decide("api", rules.Entry{Key: "user", Value: "alice"}).Code != engine.OK {
		t.Errorf("Decide after reset: over the limit")
	}
	if !strings.Contains(f.logged(), "admin: key reset") {
		t.Errorf("no log line for the reset:\n%s", f.logged())
	}

	// The value may hold '='; entries keep their order.
	if code := f.do("GET", "/v1/keys?domain=api&entry=path=/search&entry=x=a=b", "", &ks); code != http.StatusOK {
		t.Errorf("two entries: %d", code)
	}
	if ks.Rule != nil || len(ks.Entries) != 2 || ks.Entries[1] != (rules.Entry{Key: "x", Value: "a=b"}) {
		t.Errorf("two entries: %+v, want no rule and x=a=b second", ks)
	}
	if f.do("GET", "/v1/keys?domain=api&entry=path=/search", "", &ks); ks.Rule == nil || ks.Rule.Name != "search" || ks.Remaining != 3 {
		t.Errorf("path=/search: %+v, want rule search with 3 remaining (burst)", ks)
	}

	// No rule applies, an unlimited one, nothing to reset.
	if code := f.do("GET", "/v1/keys?domain=nope&entry=user=a", "", &ks); code != http.StatusOK || ks.Rule != nil || ks.Unlimited {
		t.Errorf("unknown domain: %d %+v, want 200 with rule null", code, ks)
	}
	if f.do("GET", "/v1/keys?domain=api&entry=internal=a", "", &ks); ks.Rule != nil || !ks.Unlimited {
		t.Errorf("unlimited rule: %+v, want rule null, unlimited", ks)
	}
	if f.do("DELETE", "/v1/keys?domain=nope&entry=user=a", "", &reset); reset.Reset {
		t.Errorf("reset of an unknown domain reported true")
	}
}

func TestKeysRejected(t *testing.T) {
	f := newFixture(t, nil)
	many := strings.Repeat("&entry=k=v", engine.MaxEntries+1)
	for _, tc := range []struct{ query, want string }{
		{"", "missing domain"},
		{"entry=user=a", "missing domain"},
		{"domain=api", "missing entries"},
		{"domain=api&entry=user", `entry 1 "user": want key=value`},
		{"domain=api&entry=user=a&entry=b", `entry 2 "b": want key=value`},
		{"domain=api&entry==a", "empty key"},
		{"domain=api&entry=%zz", "malformed query"},
		{"domain=api" + many, "at most 32"},
	} {
		for _, method := range []string{"GET", "DELETE"} {
			var e errorAnswer
			code := f.do(method, "/v1/keys?"+tc.query, "", &e)
			if code != http.StatusBadRequest || !strings.Contains(e.Error, tc.want) {
				t.Errorf("%s ?%s = %d %q, want 400 containing %q", method, tc.query, code, e.Error, tc.want)
			}
		}
	}
}

func TestReload(t *testing.T) {
	var calls int
	var fail error
	f := newFixture(t, &Options{Reload: func() error { calls++; return fail }})
	var ok struct {
		Reloaded bool `json:"reloaded"`
		Rules    int  `json:"rules"`
	}
	if code := f.do("POST", "/v1/reload", "", &ok); code != http.StatusOK || !ok.Reloaded || ok.Rules != 3 || calls != 1 {
		t.Errorf("POST /v1/reload = %d %+v after %d calls", code, ok, calls)
	}
	fail = errors.Join(errors.New("a.yaml: descriptor 'x.y': invalid rate limit unit 'fortnight'"), errors.New("b.yaml: config file cannot have empty domain"))
	var e errorAnswer
	if code := f.do("POST", "/v1/reload", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "fortnight") || len(e.Errors) != 2 {
		t.Errorf("rejected reload = %d %+v, want 400 with both errors", code, e)
	}
	fail = fmt.Errorf("rule files: %w", &fs.PathError{Op: "stat", Path: "/etc/rules", Err: fs.ErrNotExist})
	if code := f.do("POST", "/v1/reload", "", &e); code != http.StatusInternalServerError || !strings.Contains(e.Error, "/etc/rules") {
		t.Errorf("unreadable files = %d %+v, want 500 naming the path", code, e)
	}
	if !strings.Contains(f.logged(), "admin: rules reloaded") || !strings.Contains(f.logged(), "admin: reload rejected") {
		t.Errorf("reloads not logged:\n%s", f.logged())
	}

	f = newFixture(t, nil)
	if code := f.do("POST", "/v1/reload", "", &e); code != http.StatusNotImplemented {
		t.Errorf("POST /v1/reload without Reload = %d, want 501", code)
	}
}

func TestNilOptions(t *testing.T) {
	set, err := rules.Compile([]rules.Source{{Name: "t.yaml", Data: []byte(rulesYAML)}})
	if err != nil {
		t.Fatal(err)
	}
	st := memorystore.New(nil)
	defer st.Close()
	srv := httptest.NewServer(Handler(engine.New(st, set, nil), nil))
	defer srv.Close()
	req, _ := http.NewRequest("DELETE", srv.URL+"/v1/rules/api", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE with nil Options = %d, want 200", resp.StatusCode)
	}
}

// TestConcurrentChanges: concurrent changes each answer for themselves, and OnChange
// sees them in the order they land, the last with the rules that serve.
func TestConcurrentChanges(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			path := fmt.Sprintf("/v1/rules/d%d", g)
			body := fmt.Sprintf("domain: d%d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n", g)
			for range 20 {
				if code := f.do("PUT", path, body, nil); code != http.StatusCreated {
					t.Errorf("PUT %s = %d, want 201", path, code)
				}
				if code := f.do("DELETE", path, "", nil); code != http.StatusOK {
					t.Errorf("DELETE %s = %d, want 200", path, code)
				}
			}
		})
	}
	wg.Wait()
	changes := f.changed()
	if len(changes) != 8*20*2 {
		t.Fatalf("OnChange called %d times, want %d", len(changes), 8*20*2)
	}
	if last := changes[len(changes)-1]; last != f.eng.Rules() {
		t.Errorf("OnChange last got a set of %d domains, the engine serves %d", len(last.Domains()), len(f.eng.Rules().Domains()))
	}
	for i, s := range changes {
		for j := range i {
			if changes[j] == s {
				t.Fatalf("OnChange %d got the set of OnChange %d again", i, j)
			}
		}
	}
}

// TestKeysResetAfter: over the limit, reset_after_ms is still the time until full
// capacity, as KeyState documents.
func TestKeysResetAfter(t *testing.T) {
	f := newFixture(t, nil)
	// search: a token bucket of 10 per 5m, burst 3: a token every 30s, full after 90s.
	for range 3 {
		f.decide("api", rules.Entry{Key: "path", Value: "/search"})
	}
	var ks KeyState
	f.do("GET", "/v1/keys?domain=api&entry=path=/search", "", &ks)
	if !ks.OverLimit || ks.Remaining != 0 || ks.ResetAfterMS < 89_000 || ks.ResetAfterMS > 90_000 {
		t.Errorf("after 3 of 3: %+v, want over the limit, reset_after_ms about 90000", ks)
	}
}
