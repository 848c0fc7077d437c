package promlimit_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/concurrency"
	promlimit "github.com/go-ratelimit/ratelimit/contrib/prometheus"
	"github.com/go-ratelimit/ratelimit/internal/grafanatest"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestGrafanaDashboardQueriesExportedMetrics reads every PromQL query of the library's
// dashboard and checks it against /metrics of a real HTTP server serving a registry that
// an Observer and a concurrency collector fill with real decisions: every metric queried
// is exported, and every ratelimit_* family exported is charted.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := promlimit.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := memorystore.New(nil)
	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerHour(1),
		&ratelimit.Options{Name: "api", KeyClass: "ip", Observer: obs})
	ctx := context.Background()
	for range 2 { // allowed, then denied
		if _, err := lim.Allow(ctx, "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
	}
	_ = store.Close()
	if _, err := lim.Allow(ctx, "198.51.100.1"); err == nil { // failed
		t.Fatal("Allow on a closed store succeeded")
	}

	cl, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(2), InitialLimit: 2, Partitions: map[string]float64{"batch": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if err := promlimit.RegisterConcurrency(reg, cl, "api", nil); err != nil {
		t.Fatal(err)
	}
	a, err := cl.Partition("batch").Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(concurrency.Success)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	queried := grafanatest.Check(t, "../../deploy/grafana/ratelimit.json", srv.URL, "ratelimit_", nil)
	if len(queried) < 10 {
		t.Errorf("found %d metric names in the dashboard, want at least 10: %v", len(queried), queried)
	}
}
