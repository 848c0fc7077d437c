package grafanatest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const exposition = `# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{code="200"} 3
# TYPE app_latency_seconds histogram
app_latency_seconds_bucket{le="+Inf"} 3
app_latency_seconds_sum 0.1
app_latency_seconds_count 3
# TYPE app_up gauge
app_up 1
# TYPE go_goroutines gauge
go_goroutines 7
`

func TestMetricNames(t *testing.T) {
	for q, want := range map[string][]string{
		`sum by (code) (rate(app_requests_total{code=~"5.."}[5m])) / sum(rate(app_requests_total[5m]))`: {"app_requests_total", "app_requests_total"},
		`histogram_quantile(0.99, sum by (le) (rate(app_latency_seconds_bucket[$__rate_interval])))`:    {"app_latency_seconds_bucket"},
		`label_values(app_up{job=~"$job"}, instance)`:                                                   {"app_up"},
		`time() - max(app_started_seconds) and on (job) app_up`:                                         {"app_started_seconds", "app_up"},
	} {
		if got := MetricNames(q); !reflect.DeepEqual(got, want) {
			t.Errorf("MetricNames(%q) = %v, want %v", q, got, want)
		}
	}
}

// recorder keeps the errors Check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()
	charted := []string{`rate(app_latency_seconds_sum[5m])`, `app_up`} // and the template's app_requests_total
	for _, c := range []struct {
		name       string
		exprs      []string
		exceptions map[string]string
		want       []string // substrings of the errors, in order
	}{
		{"all charted", charted, nil, nil},
		{"an exception", charted[:1], map[string]string{"app_up": "a constant"}, nil},
		{"unknown metric", append(charted, `app_gone_total`), nil, []string{"does not export: [app_gone_total]"}},
		{"uncharted family", charted[1:], nil, []string{"no query of", "[app_latency_seconds]"}},
		{"stale exception", charted, map[string]string{"app_up": "", "app_never": "x"}, []string{"charted or not exported: [app_never app_up]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeDashboard(t, c.exprs)
			r := &recorder{TB: t}
			Check(r, path, srv.URL, "app_", c.exceptions)
			if (len(r.errs) == 0) != (len(c.want) == 0) {
				t.Fatalf("errors %q, want %q", r.errs, c.want)
			}
			all := strings.Join(r.errs, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors %q, want one with %q", r.errs, w)
				}
			}
		})
	}
}

// writeDashboard writes a dashboard of one panel with exprs as its targets.
func writeDashboard(t *testing.T, exprs []string) string {
	t.Helper()
	var targets []string
	for _, e := range exprs {
		targets = append(targets, fmt.Sprintf(`{"expr": %q}`, e))
	}
	path := filepath.Join(t.TempDir(), "d.json")
	dash := `{"templating": {"list": [{"definition": "label_values(app_requests_total, job)"}]}, "panels": [{"targets": [` + strings.Join(targets, ",") + `]}]}`
	if err := os.WriteFile(path, []byte(dash), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
