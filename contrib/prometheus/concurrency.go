package promlimit

import (
	"fmt"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of a concurrency limiter, before any namespace, labelled by limiter (and
// partition).
const (
	ConcurrencyLimitName    = "ratelimit_concurrency_limit"               // gauge{limiter}
	ConcurrencyInFlightName = "ratelimit_concurrency_in_flight"           // gauge{limiter}
	ConcurrencyQueuedName   = "ratelimit_concurrency_queued"              // gauge{limiter}
	ConcurrencyRejectedName = "ratelimit_concurrency_rejected_total"      // counter{limiter}
	ConcurrencyDroppedName  = "ratelimit_concurrency_dropped_total"       // counter{limiter}
	PartitionInFlightName   = "ratelimit_concurrency_partition_in_flight" // gauge{limiter, partition}
	PartitionShareName      = "ratelimit_concurrency_partition_share"     // gauge{limiter, partition}
)

// ConcurrencyCollector is a [prometheus.Collector] of a [concurrency.Limiter]'s state,
// read when Prometheus scrapes: the adaptive limit, the requests in flight and queued,
// the requests rejected and released as dropped, and each partition's in-flight
// requests and guaranteed share. It costs the limiter nothing between scrapes. To count
// each Acquire's outcome too, set the limiter's Options.Observer to an [Observer].
type ConcurrencyCollector struct {
	lim                                     *concurrency.Limiter
	name                                    string
	limit, inflight, queued, rejected, drop *prometheus.Desc
	pInflight, pShare                       *prometheus.Desc
}

var _ prometheus.Collector = (*ConcurrencyCollector)(nil)

// NewConcurrencyCollector returns a collector of lim's state, its series labelled
// limiter=name. Namespace and ConstLabels of opts apply; nil opts means none.
func NewConcurrencyCollector(lim *concurrency.Limiter, name string, opts *Options) *ConcurrencyCollector {
	var o Options
	if opts != nil {
		o = *opts
	}
	desc := func(metric, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.Namespace, "", metric), help, append([]string{"limiter"}, labels...), o.ConstLabels)
	}
	return &ConcurrencyCollector{
		lim:       lim,
		name:      name,
		limit:     desc(ConcurrencyLimitName, "The concurrency limit in force: requests admitted at once."),
		inflight:  desc(ConcurrencyInFlightName, "Requests admitted and not yet released."),
		queued:    desc(ConcurrencyQueuedName, "Callers waiting for a slot."),
		rejected:  desc(ConcurrencyRejectedName, "Requests not admitted: the limit was reached, the queue full, or the wait too long."),
		drop:      desc(ConcurrencyDroppedName, "Admitted requests released as dropped (a sign of overload)."),
		pInflight: desc(PartitionInFlightName, "A partition's requests admitted and not yet released.", "partition"),
		pShare:    desc(PartitionShareName, "The slots guaranteed to a partition under the current limit.", "partition"),
	}
}

// RegisterConcurrency registers a [NewConcurrencyCollector] of lim with reg (nil means
// [prometheus.DefaultRegisterer]).
func RegisterConcurrency(reg prometheus.Registerer, lim *concurrency.Limiter, name string, opts *Options) error {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	if err := reg.Register(NewConcurrencyCollector(lim, name, opts)); err != nil {
		return fmt.Errorf("promlimit: register the concurrency limiter %q: %w", name, err)
	}
	return nil
}

// Describe sends the descriptors of the metrics.
func (c *ConcurrencyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.limit, c.inflight, c.queued, c.rejected, c.drop, c.pInflight, c.pShare} {
		ch <- d
	}
}

// Collect sends the limiter's current state.
func (c *ConcurrencyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.lim.Stats()
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(s.Limit), c.name)
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(s.InFlight), c.name)
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued), c.name)
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(s.Rejected), c.name)
	ch <- prometheus.MustNewConstMetric(c.drop, prometheus.CounterValue, float64(s.Dropped), c.name)
	for _, p := range c.lim.Partitions() {
		ch <- prometheus.MustNewConstMetric(c.pInflight, prometheus.GaugeValue, float64(p.InFlight()), c.name, p.Name())
		ch <- prometheus.MustNewConstMetric(c.pShare, prometheus.GaugeValue, float64(p.Share()), c.name, p.Name())
	}
}
