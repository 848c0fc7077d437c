package live

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

const testRules = `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2, name: per-user}
  - key: route
    rate_limit: {unit: second, requests_per_unit: 100}
`

func compile(t *testing.T, yaml string) *rules.Set {
	t.Helper()
	set, err := rules.Compile([]rules.Source{{Name: "rules.yaml", Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// decide reports a decision of the rule entries match, over the limit or not.
func decide(b *Board, set *rules.Set, over bool, kv ...string) {
	var es []rules.Entry
	for i := 0; i+1 < len(kv); i += 2 {
		es = append(es, rules.Entry{Key: kv[i], Value: kv[i+1]})
	}
	st := &engine.Status{Code: engine.OK, Rule: set.Match("api", es, make([]string, len(es)))}
	if over {
		st.Code = engine.OverLimit
	}
	b.Decided("api", es, st, 1)
}

// recorder is an engine.Observer that counts what the Board passes on.
type recorder struct{ decided, failed, latency, served int }

func (r *recorder) Decided(string, []rules.Entry, *engine.Status, uint64) { r.decided++ }
func (r *recorder) Failed(string, error)                                  { r.failed++ }
func (r *recorder) Latency(string, time.Duration)                         { r.latency++ }
func (r *recorder) Served(string, engine.Outcome)                         { r.served++ }

func TestBoard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := compile(t, testRules)
		next := &recorder{}
		b := New(&Options{Next: next})
		b.Loaded(set)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()

		for i := range 5 {
			decide(b, set, i >= 2, "user", "alice")
		}
		decide(b, set, false, "user", "bob")
		decide(b, set, false, "route", "/a")
		b.Failed("api", errors.New("down"))
		b.Latency("api", 30*time.Microsecond)
		b.Latency("api", 10*time.Microsecond)
		b.Served("grpc", engine.OutcomeOK)
		time.Sleep(time.Second + time.Millisecond) // one sample

		if next.decided != 7 || next.failed != 1 || next.latency != 2 || next.served != 1 {
			t.Errorf("passed on %+v, want 7 decided, 1 failed, 2 latencies, 1 served", *next)
		}
		s := b.Snapshot(10)
		if s.Rules.Version != 1 || s.Rules.Domains != 1 || s.Rules.Rules != 2 || s.Store.Kind != "memory" {
			t.Errorf("snapshot rules %+v store %+v, want version 1, 1 domain, 2 rules, memory", s.Rules, s.Store)
		}
		rates := map[string]RuleRates{}
		for _, r := range s.Rates {
			rates[r.Rule] = r
		}
		u := rates["api.user"]
		if last := len(u.Calls) - 1; len(u.Calls) != History || u.Calls[last] != 6 || u.Over[last] != 3 || u.Total != 6 || u.OverAll != 3 {
			t.Errorf("api.user rates: last second %v calls %v over, totals %d %d; want 6, 3", u.Calls[len(u.Calls)-1], u.Over[len(u.Over)-1], u.Total, u.OverAll)
		}
		if m := s.Latency.MeanMicros[History-1]; m != 20 {
			t.Errorf("mean latency of the last second %v µs, want 20", m)
		}
		if mx, f := s.Latency.MaxMicros[History-1], s.Latency.Failures[History-1]; mx != 30 || f != 1 {
			t.Errorf("last second: max %v µs, %v failures; want 30, 1", mx, f)
		}
		top := s.Top["api"]
		if len(top) != 1 || top[0].Key != "user=alice" || top[0].Denied != 3 || top[0].Total != 5 || top[0].DenyRatio != 0.6 {
			t.Errorf("top %+v, want user=alice with 3 of 5 denied", top)
		}
		traffic, ok := b.Top("api", 2, true)
		if !ok || len(traffic) != 2 || traffic[0].Key != "user=alice" {
			t.Errorf("Top by traffic = %+v, %v; want user=alice first of 2", traffic, ok)
		}
		if _, ok := b.Top("nope", 2, false); ok {
			t.Error("Top of a domain not loaded: ok")
		}

		// A reload keeps the rule's counts and the domain's keys; a failed load shows.
		b.Loaded(compile(t, testRules))
		b.LoadFailed(errors.New("rules.yaml:3: bad"))
		s = b.Snapshot(10)
		if s.Rules.Version != 2 || s.Rules.LastError == "" || len(s.Top["api"]) != 1 {
			t.Errorf("after a reload and a failure: %+v, top %v", s.Rules, s.Top["api"])
		}
		cancel()
		<-done
	})
}

func TestDecidedDoesNotAllocate(t *testing.T) {
	set := compile(t, testRules)
	b := New(nil)
	b.Loaded(set)
	es := []rules.Entry{{Key: "user", Value: "carol-with-a-long-name-that-still-fits"}}
	st := &engine.Status{Code: engine.OverLimit, Rule: set.Match("api", es, make([]string, 1))}
	if allocs := testing.AllocsPerRun(1000, func() { b.Decided("api", es, st, 1) }); allocs != 0 {
		t.Errorf("Decided allocates %v times, want 0", allocs)
	}
}

func TestAppendKeyCuts(t *testing.T) {
	var buf [16]byte
	got := string(appendKey(buf[:0], []rules.Entry{{Key: "a", Value: "1"}, {Key: "b", Value: strings.Repeat("x", 40)}}))
	if got != "a=1, b=xxxxxxxxx" {
		t.Errorf("appendKey = %q, want a=1, b= cut at 16 bytes", got)
	}
}

func TestHandlers(t *testing.T) {
	set := compile(t, testRules)
	b := New(nil)
	b.Loaded(set)
	decide(b, set, true, "user", "dave")
	mux := http.NewServeMux()
	for _, r := range b.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(data)
	}
	for path, want := range map[string]int{
		"/v1/top?domain=api":           200,
		"/v1/top?domain=api&by=x":      400,
		"/v1/top?domain=api&n=0":       400,
		"/v1/top?domain=api&n=101":     400,
		"/v1/top":                      400,
		"/v1/top?domain=other":         404,
		"/v1/live?n=abc":               400,
		"/v1/live":                     200,
		"/dashboard":                   200,
		"/dashboard/app.js":            200,
		"/dashboard/style.css":         200,
		"/dashboard/secret.txt":        404,
		"/dashboard/..%2fhandler.go":   404,
		"/v1/top?domain=api&n=100":     200,
		"/v1/top?domain=api&by=denied": 200,
	} {
		if code, _, body := get(path); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
	_, typ, body := get("/v1/top?domain=api&n=3")
	var top struct {
		Domain string
		Keys   []TopEntry
	}
	if err := json.Unmarshal([]byte(body), &top); err != nil || typ != "application/json" {
		t.Fatalf("/v1/top: %s %q: %v", typ, body, err)
	}
	if top.Domain != "api" || len(top.Keys) != 1 || top.Keys[0].Key != "user=dave" || top.Keys[0].Denied != 1 {
		t.Errorf("/v1/top = %+v, want user=dave denied once", top)
	}
	if _, typ, body := get("/dashboard"); !strings.HasPrefix(typ, "text/html") || !strings.Contains(body, `src="dashboard/app.js"`) {
		t.Errorf("/dashboard: %s, without its script", typ)
	}
	if _, _, body := get("/dashboard"); strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the page refers to another host: it must work offline")
	}
}
