package promlimit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit/concurrency"
	promlimit "github.com/go-ratelimit/ratelimit/contrib/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestConcurrencyCollector(t *testing.T) {
	lim, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(4), InitialLimit: 4, Partitions: map[string]float64{"batch": 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := promlimit.RegisterConcurrency(reg, lim, "api", &promlimit.Options{Namespace: "svc"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _ := lim.Acquire(ctx)
	b, _ := lim.Partition("batch").Acquire(ctx)
	c, _ := lim.Acquire(ctx)
	c.Release(concurrency.Dropped)
	for range 3 {
		lim.Acquire(ctx) // 2 admitted, then the limit is reached
	}
	_, _ = a, b
	want := `
# HELP svc_ratelimit_concurrency_dropped_total Admitted requests released as dropped (a sign of overload).
# TYPE svc_ratelimit_concurrency_dropped_total counter
svc_ratelimit_concurrency_dropped_total{limiter="api"} 1
# HELP svc_ratelimit_concurrency_in_flight Requests admitted and not yet released.
# TYPE svc_ratelimit_concurrency_in_flight gauge
svc_ratelimit_concurrency_in_flight{limiter="api"} 4
# HELP svc_ratelimit_concurrency_limit The concurrency limit in force: requests admitted at once.
# TYPE svc_ratelimit_concurrency_limit gauge
svc_ratelimit_concurrency_limit{limiter="api"} 4
# HELP svc_ratelimit_concurrency_partition_in_flight A partition's requests admitted and not yet released.
# TYPE svc_ratelimit_concurrency_partition_in_flight gauge
svc_ratelimit_concurrency_partition_in_flight{limiter="api",partition="batch"} 1
# HELP svc_ratelimit_concurrency_partition_share The slots guaranteed to a partition under the current limit.
# TYPE svc_ratelimit_concurrency_partition_share gauge
svc_ratelimit_concurrency_partition_share{limiter="api",partition="batch"} 2
# HELP svc_ratelimit_concurrency_queued Callers waiting for a slot.
# TYPE svc_ratelimit_concurrency_queued gauge
svc_ratelimit_concurrency_queued{limiter="api"} 0
# HELP svc_ratelimit_concurrency_rejected_total Requests not admitted: the limit was reached, the queue full, or the wait too long.
# TYPE svc_ratelimit_concurrency_rejected_total counter
svc_ratelimit_concurrency_rejected_total{limiter="api"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := promlimit.RegisterConcurrency(reg, lim, "api", &promlimit.Options{Namespace: "svc"}); err == nil {
		t.Error("registering the same collector twice succeeded")
	}
}
