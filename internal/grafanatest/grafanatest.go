// Package grafanatest checks a Grafana dashboard against the metrics a running process
// exports: every metric its queries name must be served, and every family served must be
// charted by some query or be listed as a deliberate exception.
package grafanatest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Queries returns the PromQL of the dashboard in the file at path: the panels' target
// expressions and the template variables' queries.
func Queries(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var queries []string
	collectQueries(dash, "", &queries)
	return queries, nil
}

// collectQueries appends the PromQL found in v, a decoded dashboard, to out.
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

// MetricNames returns the metric names a PromQL query (or a Grafana label_values query)
// selects: identifiers that are not functions, keywords, label names or numbers.
func MetricNames(q string) []string {
	var names []string
	for _, m := range labelValuesCall.FindAllStringSubmatch(q, -1) {
		names = append(names, m[1])
	}
	q = labelValuesCall.ReplaceAllString(q, " ")
	q = grouping.ReplaceAllString(q, " ")
	q = braces.ReplaceAllString(q, " ")
	for _, id := range identifier.FindAllString(q, -1) {
		if strings.HasSuffix(id, "(") {
			continue // a function call
		}
		if id = strings.TrimSpace(id); !promqlWords[id] {
			names = append(names, id)
		}
	}
	return names
}

// Exposition is what a Prometheus text exposition endpoint served.
type Exposition struct {
	Families map[string]string // family name → type (counter, gauge, histogram, ...)
	Samples  map[string]bool   // sample names: a histogram's _bucket, _sum and _count
}

// Scrape reads the exposition served at url.
func Scrape(url string) (*Exposition, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	e := &Exposition{Families: map[string]string{}, Samples: map[string]bool{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			e.Families[f[2]] = f[3]
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			e.Samples[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return e, nil
}

// family returns the family a sample name belongs to, "" when none was served.
func (e *Exposition) family(sample string) string {
	if _, ok := e.Families[sample]; ok {
		return sample
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(sample, suffix); ok && e.Families[f] != "" {
			return f
		}
	}
	return ""
}

// Check fails t unless the dashboard at path and the exposition at url agree: every
// metric the dashboard's queries name is one the exposition serves, and every family
// served whose name starts with prefix is queried by the dashboard, except those in
// exceptions (name → why it is not charted), each of which must be served and not
// queried. It returns the metric names the dashboard queries.
func Check(t testing.TB, path, url, prefix string, exceptions map[string]string) map[string]bool {
	t.Helper()
	queries, err := Queries(path)
	if err != nil {
		t.Fatal(err)
	}
	queried := map[string]bool{}
	for _, q := range queries {
		for _, n := range MetricNames(q) {
			queried[n] = true
		}
	}
	e, err := Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	charted := map[string]bool{}
	var unknown []string
	for n := range queried {
		if !e.Samples[n] {
			unknown = append(unknown, n)
		}
		charted[e.family(n)] = true
	}
	var uncharted, staleExceptions []string
	for f := range e.Families {
		if strings.HasPrefix(f, prefix) && !charted[f] && exceptions[f] == "" {
			uncharted = append(uncharted, f)
		}
	}
	for f := range exceptions {
		if charted[f] || e.Families[f] == "" {
			staleExceptions = append(staleExceptions, f)
		}
	}
	sort.Strings(unknown)
	sort.Strings(uncharted)
	sort.Strings(staleExceptions)
	if len(unknown) > 0 {
		t.Errorf("%s queries metrics that %s does not export: %v", path, url, unknown)
	}
	if len(uncharted) > 0 {
		t.Errorf("%s exports families that no query of %s charts: %v", url, path, uncharted)
	}
	if len(staleExceptions) > 0 {
		t.Errorf("exceptions that are charted or not exported: %v", staleExceptions)
	}
	return queried
}
