package rules

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestConsistency(t *testing.T) {
	set, err := Compile([]Source{{Name: "a.yaml", Data: []byte(`domain: api
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: 10, consistency: eventual, sync: 250ms}
  - key: b
    rate_limit: {unit: second, requests_per_unit: 10, consistency: Strict}
  - key: c
    rate_limit: {unit: second, requests_per_unit: 10, algorithm: sliding_window_counter, consistency: eventual}
  - key: d
    rate_limit: {unit: second, requests_per_unit: 10, algorithm: gcra}
`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		mode Consistency
		sync time.Duration
	}{
		{"a", Eventual, 250 * time.Millisecond},
		{"b", Strict, 0},
		{"c", Eventual, 0},
		{"d", ConsistencyDefault, 0},
	} {
		r := set.Match("api", []Entry{{Key: tc.key}}, make([]string, 1))
		if r == nil || r.Consistency != tc.mode || r.Sync != tc.sync {
			t.Errorf("rule %s: got %+v, want consistency %v, sync %v", tc.key, r, tc.mode, tc.sync)
		}
	}
}

// TestConsistencyErrors: each bad value is reported with its file, line and descriptor.
func TestConsistencyErrors(t *testing.T) {
	for _, tc := range []struct {
		rateLimit, want string
	}{
		{"{unit: second, requests_per_unit: 1,\n      consistency: eventualy}",
			"a.yaml: line 5: descriptor 'api.a': invalid consistency 'eventualy': want strict or eventual"},
		{"{unit: second, requests_per_unit: 1, algorithm: token_bucket,\n      consistency: eventual}",
			"a.yaml: line 5: descriptor 'api.a': consistency: eventual decides fixed_window and sliding_window_counter, not token_bucket; use one of them, or consistency: strict"},
		{"{unit: second, requests_per_unit: 1, algorithm: sliding_window_log, consistency: eventual}",
			"a.yaml: line 4: descriptor 'api.a': consistency: eventual decides fixed_window and sliding_window_counter, not sliding_window_log"},
		{"{unit: second, requests_per_unit: 1, consistency: eventual,\n      sync: soon}",
			"a.yaml: line 5: descriptor 'api.a': invalid sync 'soon': want a duration from 1ms to 1m0s, such as 100ms"},
		{"{unit: second, requests_per_unit: 1, consistency: eventual, sync: 10us}",
			"a.yaml: line 4: descriptor 'api.a': invalid sync '10us'"},
		{"{unit: second, requests_per_unit: 1, consistency: eventual, sync: 2m}",
			"a.yaml: line 4: descriptor 'api.a': invalid sync '2m'"},
		{"{unit: second, requests_per_unit: 1,\n      sync: 100ms}",
			"a.yaml: line 5: descriptor 'api.a': sync applies to consistency: eventual only; set consistency: eventual in the same rate_limit"},
		{"{unit: second, requests_per_unit: 1, consistency: strict, sync: 100ms}",
			"a.yaml: line 4: descriptor 'api.a': sync applies to consistency: eventual only"},
		{"{unlimited: true, consistency: eventual}",
			"a.yaml: line 4: descriptor 'api.a': unlimited takes no consistency or sync"},
	} {
		src := "domain: api\ndescriptors:\n  - key: a\n    rate_limit: " + tc.rateLimit + "\n"
		_, err := Compile([]Source{{Name: "a.yaml", Data: []byte(src)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%q):\ngot  %v\nwant %q", src, err, tc.want)
		}
	}
}

// TestConsistencyRoundTrip: the settings survive the admin API's JSON (its GET returns a
// domain as JSON, and its PUT reads it back).
func TestConsistencyRoundTrip(t *testing.T) {
	f, err := Parse(Source{Name: "a.yaml", Data: []byte("domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, consistency: eventual, sync: 50ms}\n")})
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"consistency":"eventual","sync":"50ms"`; !strings.Contains(string(j), want) {
		t.Errorf("JSON %s, want it to contain %s", j, want)
	}
	back, err := Parse(Source{Name: "admin", Data: j})
	if err != nil {
		t.Fatal(err)
	}
	if rl := back.Descriptors[0].RateLimit; rl.Consistency != "eventual" || rl.Sync != "50ms" {
		t.Errorf("read back %+v", rl)
	}
}
