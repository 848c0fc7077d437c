package main

import (
	"path/filepath"
	"strconv"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/metrics"
	"github.com/go-ratelimit/ratelimit/internal/grafanatest"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// dashboardDir holds the Grafana dashboards, from this module's directory.
const dashboardDir = "../../deploy/grafana"

// shadowRules add a shadow-mode rule and a detailed_metric rule to the example rules, so
// that every series the dashboard queries can be made to exist.
const shadowRules = `
domain: shadowed
descriptors:
  - key: user
    shadow_mode: true
    rate_limit: {unit: hour, requests_per_unit: 1, name: trial}
  - key: tenant
    detailed_metric: true
    rate_limit: {unit: hour, requests_per_unit: 1000}
`

// TestGrafanaDashboardQueriesExportedMetrics reads every PromQL query of the ratelimitd
// dashboard and checks that each metric it names is in /metrics of a running service on
// Redis, after traffic that makes every series of the service exist; and that every
// ratelimitd_* family the service exports is charted.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "example.yaml"), string(exampleRules))
	writeFile(t, filepath.Join(dir, "shadow.yaml"), shadowRules)
	// A Redis store, for the store's metrics (breaker, calls, retries, fail-policy
	// answers, failures); the memory store has none.
	s := start(t, nil, "-config", dir, "-store", "redis://"+redistest.Start(t).Addr(), "-store-timeout", "10s")
	for range 12 { // over the 10 a second of remote_address, and near it first
		s.should(t, "example", &rlv3.RateLimitDescriptor{Entries: entries("remote_address", "192.0.2.1")})
	}
	for range 2 {
		s.should(t, "shadowed", &rlv3.RateLimitDescriptor{Entries: entries("user", "u1")})
	}
	for i := range metrics.MaxDetailed + 1 { // one value beyond the labelled ones: overflow
		s.should(t, "shadowed", &rlv3.RateLimitDescriptor{Entries: entries("tenant", strconv.Itoa(i))})
	}
	queried := grafanatest.Check(t, filepath.Join(dashboardDir, "ratelimitd.json"), "http://"+s.http+"/metrics", "ratelimitd_", nil)
	if len(queried) < 25 {
		t.Errorf("found %d metric names in the dashboard, want at least 25: %v", len(queried), queried)
	}
}
