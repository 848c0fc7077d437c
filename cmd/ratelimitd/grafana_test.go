package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
)

// dashboardDir holds the Grafana dashboards, from this module's directory.
const dashboardDir = "../../deploy/grafana"

// shadowRules add a shadow-mode rule to the example rules, so that every series the
// dashboard queries can be made to exist.
const shadowRules = `
domain: shadowed
descriptors:
  - key: user
    shadow_mode: true
    rate_limit: {unit: hour, requests_per_unit: 1, name: trial}
`

// TestGrafanaDashboardQueriesExportedMetrics reads every PromQL query of the ratelimitd
// dashboard and checks that each metric it names is in /metrics of a running service,
// after traffic that makes every series of the service exist.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(dashboardDir, "ratelimitd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("ratelimitd.json: %v", err)
	}
	var queries []string
	collectQueries(dash, "", &queries)
	names := map[string]bool{}
	for _, q := range queries {
		for _, n := range metricNames(q) {
			names[n] = true
		}
	}
	if len(names) < 15 {
		t.Fatalf("found %d metric names in %d queries, want at least 15: %v", len(names), len(queries), names)
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.yaml"), string(exampleRules))
	writeFile(t, filepath.Join(dir, "shadow.yaml"), shadowRules)
	s := start(t, nil, "-config", dir)
	for range 12 { // over the 10 a second of remote_address, and near it first
		s.should(t, "example", &rlv3.RateLimitDescriptor{Entries: entries("remote_address", "192.0.2.1")})
	}
	for range 2 {
		s.should(t, "shadowed", &rlv3.RateLimitDescriptor{Entries: entries("user", "u1")})
	}
	exposed := scrape(t, "http://"+s.http+"/metrics")

	var missing []string
	for n := range names {
		if !exposed[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics /metrics does not export: %v", missing)
	}
}

// collectQueries appends the PromQL of a dashboard: panel targets' expr and the
// templating variables' queries.
func collectQueries(v any, key string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			collectQueries(x, k, out)
		}
	case []any:
		for _, x := range v {
			collectQueries(x, key, out)
		}
	case string:
		if key == "expr" || key == "definition" || key == "query" && strings.Contains(v, "(") {
			*out = append(*out, v)
		}
	}
}

var (
	labelValuesCall = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)[^)]*\)`)
	grouping        = regexp.MustCompile(`\b(by|without|on|ignoring)\s*\([^)]*\)`)
	braces          = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|"[^"]*"`)
	identifier      = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promqlWords     = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "group_left": true, "group_right": true}
)

// metricNames returns the metric names a PromQL query (or a Grafana label_values query)
// selects: identifiers that are not functions, keywords, label names or numbers.
func metricNames(q string) []string {
	var names []string
	for _, m := range labelValuesCall.FindAllStringSubmatch(q, -1) {
		names = append(names, m[1])
	}
	q = labelValuesCall.ReplaceAllString(q, " ")
	q = grouping.ReplaceAllString(q, " ")
	q = braces.ReplaceAllString(q, " ")
	for _, id := range identifier.FindAllString(q, -1) {
		if strings.HasSuffix(id, "(") || promqlWords[id] {
			continue // a function call
		}
		names = append(names, strings.TrimSpace(id))
	}
	return names
}

// scrape returns the names of the samples an exposition endpoint serves.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}
