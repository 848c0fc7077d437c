package promlimit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/go-ratelimit/ratelimit"
	promlimit "github.com/go-ratelimit/ratelimit/contrib/prometheus"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Count a limiter's decisions. In a server, register with prometheus.DefaultRegisterer
// and serve promhttp.Handler() on /metrics.
func Example() {
	reg := prometheus.NewRegistry()
	obs, err := promlimit.New(reg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerMinute(2),
		&ratelimit.Options{Name: "api", KeyClass: "ip", Observer: obs})
	for range 3 {
		lim.Allow(context.Background(), "203.0.113.7")
	}

	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "ratelimit_decisions_total" {
			expfmt.MetricFamilyToText(os.Stdout, mf)
		}
	}
	// Output:
	// # HELP ratelimit_decisions_total Rate-limit decisions, by rule, key class and outcome (allowed, denied, failed).
	// # TYPE ratelimit_decisions_total counter
	// ratelimit_decisions_total{key_class="ip",outcome="allowed",rule="api"} 2
	// ratelimit_decisions_total{key_class="ip",outcome="denied",rule="api"} 1
}
