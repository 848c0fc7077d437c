package promlimit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	promlimit "github.com/go-ratelimit/ratelimit/contrib/prometheus"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newObserver(t *testing.T, opts *promlimit.Options) (*promlimit.Observer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	obs, err := promlimit.New(reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return obs, reg
}

func TestCountsDecisionsOfALimiter(t *testing.T) {
	obs, reg := newObserver(t, nil)
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.NewWithOptions(store, ratelimit.TokenBucket, ratelimit.PerHour(3),
		&ratelimit.Options{Name: "api", KeyClass: "ip", Observer: obs})
	ctx := context.Background()
	for range 5 {
		if _, err := lim.Allow(ctx, "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
	}
	_ = store.Close()
	if _, err := lim.Allow(ctx, "198.51.100.1"); !errors.Is(err, ratelimit.ErrClosed) {
		t.Fatalf("Allow on a closed store: %v, want ErrClosed", err)
	}

	want := `
# HELP ratelimit_decisions_total Rate-limit decisions, by rule, key class and outcome (allowed, denied, failed).
# TYPE ratelimit_decisions_total counter
ratelimit_decisions_total{key_class="ip",outcome="allowed",rule="api"} 3
ratelimit_decisions_total{key_class="ip",outcome="denied",rule="api"} 2
ratelimit_decisions_total{key_class="ip",outcome="failed",rule="api"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), promlimit.DecisionsName); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, promlimit.DurationName); n != 3 {
		t.Errorf("%d duration series, want 3 (one per outcome)", n)
	}
	// Every decision was timed: 6 observations in all, each well under 100 ms.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() != promlimit.DurationName {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			count += h.GetSampleCount()
			if h.GetSampleSum() > 0.1*float64(h.GetSampleCount()) {
				t.Errorf("mean latency above 100ms: %v", h)
			}
		}
	}
	if count != 6 {
		t.Errorf("%d latency observations, want 6", count)
	}
}

func TestHistogramBuckets(t *testing.T) {
	obs, reg := newObserver(t, nil)
	obs.Observe(ratelimit.Event{Rule: "r", Outcome: ratelimit.Allowed, Latency: 300 * time.Nanosecond})
	obs.Observe(ratelimit.Event{Rule: "r", Outcome: ratelimit.Allowed, Latency: 2 * time.Millisecond})
	obs.Observe(ratelimit.Event{Rule: "r", Outcome: ratelimit.Allowed, Latency: time.Second})
	want := `
# HELP ratelimit_decision_duration_seconds Time spent deciding, store included, by rule and outcome.
# TYPE ratelimit_decision_duration_seconds histogram
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="2.5e-07"} 0
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="5e-07"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="1e-06"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="2.5e-06"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="5e-06"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="1e-05"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="2.5e-05"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="5e-05"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.0001"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.00025"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.0005"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.001"} 1
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.0025"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.005"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.01"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.025"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.05"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="0.1"} 2
ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="r",le="+Inf"} 3
ratelimit_decision_duration_seconds_sum{outcome="allowed",rule="r"} 1.0020003
ratelimit_decision_duration_seconds_count{outcome="allowed",rule="r"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), promlimit.DurationName); err != nil {
		t.Error(err)
	}
}

func TestCardinalityCap(t *testing.T) {
	obs, reg := newObserver(t, &promlimit.Options{MaxRules: 2, MaxKeyClasses: 1})
	for _, e := range []ratelimit.Event{
		{Rule: "a", KeyClass: "ip", Outcome: ratelimit.Allowed},
		{Rule: "b", KeyClass: "user", Outcome: ratelimit.Allowed},
		{Rule: "c", KeyClass: "ip", Outcome: ratelimit.Allowed},
		{Rule: "d", KeyClass: "ip", Outcome: ratelimit.Denied},
		{Rule: "a", KeyClass: "ip", Outcome: ratelimit.Allowed},
		{Rule: "bad\xff", KeyClass: "ip", Outcome: ratelimit.Failed},
		{Rule: "a", KeyClass: "ip", Outcome: 0},
	} {
		obs.Observe(e)
	}
	want := `
# HELP ratelimit_decisions_total Rate-limit decisions, by rule, key class and outcome (allowed, denied, failed).
# TYPE ratelimit_decisions_total counter
ratelimit_decisions_total{key_class="ip",outcome="allowed",rule="a"} 2
ratelimit_decisions_total{key_class="ip",outcome="unknown",rule="a"} 1
ratelimit_decisions_total{key_class="other",outcome="allowed",rule="b"} 1
ratelimit_decisions_total{key_class="ip",outcome="allowed",rule="other"} 1
ratelimit_decisions_total{key_class="ip",outcome="denied",rule="other"} 1
ratelimit_decisions_total{key_class="ip",outcome="failed",rule="other"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), promlimit.DecisionsName); err != nil {
		t.Error(err)
	}
	if obs.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", obs.Dropped())
	}

	// Many distinct values keep the series bounded.
	for i := range 10000 {
		obs.Observe(ratelimit.Event{Rule: strings.Repeat("x", i%97) + string(rune('a'+i%26)), KeyClass: "k", Outcome: ratelimit.Allowed})
	}
	if n := testutil.CollectAndCount(reg, promlimit.DecisionsName); n > 2*1*4+2 {
		t.Errorf("%d decision series after 10000 distinct rules, want at most 10", n)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	obs, _ := newObserver(t, nil)
	events := []ratelimit.Event{
		{Rule: "api", KeyClass: "ip", Outcome: ratelimit.Allowed, Latency: time.Microsecond},
		{Rule: "api", KeyClass: "ip", Outcome: ratelimit.Denied, Latency: time.Microsecond},
		{Rule: "login", KeyClass: "user", Outcome: ratelimit.Failed, Latency: time.Millisecond, Err: ratelimit.ErrClosed},
	}
	for _, e := range events {
		obs.Observe(e) // create the series
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		obs.Observe(events[i%len(events)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Observe: %v allocations per call, want 0", allocs)
	}
}

func TestConcurrentObserve(t *testing.T) {
	obs, reg := newObserver(t, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				obs.Observe(ratelimit.Event{Rule: []string{"a", "b", "c"}[(g+i)%3], KeyClass: "ip", Outcome: ratelimit.Allowed})
			}
		})
	}
	wg.Wait()
	if got := sumDecisions(t, reg); got != 8000 {
		t.Errorf("counted %v decisions, want 8000", got)
	}
}

// sumDecisions returns the sum of every decisions counter in reg.
func sumDecisions(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == promlimit.DecisionsName {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestOptions(t *testing.T) {
	obs, reg := newObserver(t, &promlimit.Options{
		Namespace:   "shop",
		ConstLabels: prometheus.Labels{"service": "billing"},
		Buckets:     []float64{0.001, 0.01},
	})
	obs.Observe(ratelimit.Event{Rule: "r", KeyClass: "ip", Outcome: ratelimit.Allowed})
	want := `
# HELP shop_ratelimit_decisions_total Rate-limit decisions, by rule, key class and outcome (allowed, denied, failed).
# TYPE shop_ratelimit_decisions_total counter
shop_ratelimit_decisions_total{key_class="ip",outcome="allowed",rule="r",service="billing"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shop_"+promlimit.DecisionsName); err != nil {
		t.Error(err)
	}

	if _, err := promlimit.New(prometheus.NewRegistry(), &promlimit.Options{Buckets: []float64{1, 1}}); err == nil {
		t.Error("New with non-increasing buckets: nil error")
	}
	if _, err := promlimit.New(reg, &promlimit.Options{Namespace: "shop", ConstLabels: prometheus.Labels{"service": "billing"}}); err == nil {
		t.Error("New registering the same metrics twice: nil error")
	}
	// A failed registration leaves nothing behind: another namespace registers fine.
	if _, err := promlimit.New(reg, &promlimit.Options{Namespace: "other"}); err != nil {
		t.Errorf("New in a new namespace: %v", err)
	}
}

func TestScrape(t *testing.T) {
	obs, reg := newObserver(t, nil)
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerHour(1),
		&ratelimit.Options{Name: "login", KeyClass: "user", Observer: obs})
	for range 3 {
		if _, err := lim.Allow(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	for _, line := range []string{
		`ratelimit_decisions_total{key_class="user",outcome="allowed",rule="login"} 1`,
		`ratelimit_decisions_total{key_class="user",outcome="denied",rule="login"} 2`,
		`ratelimit_decision_duration_seconds_count{outcome="denied",rule="login"} 2`,
		`ratelimit_decision_duration_seconds_bucket{outcome="allowed",rule="login",le="+Inf"} 1`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("scrape lacks %q:\n%s", line, body)
		}
	}
	if strings.Contains(string(body), "alice") {
		t.Error("the scrape names a key")
	}
}

func BenchmarkObserve(b *testing.B) {
	reg := prometheus.NewRegistry()
	obs, err := promlimit.New(reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := ratelimit.Event{Rule: "api", KeyClass: "ip", Outcome: ratelimit.Allowed, Latency: time.Microsecond}
	obs.Observe(e)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			obs.Observe(e)
		}
	})
}
