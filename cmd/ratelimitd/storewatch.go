package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/redisstore"
)

// failureKinds are the label values of ratelimitd_store_failures_total.
var failureKinds = [...]string{"timeout", "refused", "not_connected", "server", "other"}

// storeWatch turns what the store reports into metrics and a few log lines: a line when
// its breaker opens and when it closes, and while failures go on a summary at most every
// summaryEvery, instead of a line per call. Log lines carry no store key, so no descriptor
// value, except at debug level, which logs every failure whole.
type storeWatch struct {
	log   *slog.Logger
	stats func() redisstore.Stats

	failures [len(failureKinds)]atomic.Uint64
	lastErr  atomic.Pointer[string] // the last failure, without its key
}

// Intervals of the store's log lines.
const (
	watchEvery   = time.Second      // how often the breaker's state is read
	summaryEvery = 10 * time.Second // the shortest time between two summaries
)

// onError receives each failure the store reports (its OnError).
func (w *storeWatch) onError(err error) {
	if errors.Is(err, ratelimit.ErrCircuitOpen) {
		return // counted in the store's policy answers; the breaker's opening is logged
	}
	w.failures[failureKind(err)].Add(1)
	msg := withoutKey(err)
	w.lastErr.Store(&msg)
	w.log.Debug("store failure", "err", err)
}

// failureKind returns the index in failureKinds of err's kind.
func failureKind(err error) int {
	var op *net.OpError
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "not connected"): // whatever stopped the connection
		return 2
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return 0
	case errors.As(err, &op) && op.Op == "dial":
		return 1
	case isServerError(err):
		return 3
	}
	return 4
}

// isServerError reports whether err is an error reply of Redis (LOADING, CLUSTERDOWN,
// OOM, ...).
func isServerError(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok
}

// withoutKey returns err's text without the quoted store key of a wrapping
// `op "key": cause`, which holds the request's descriptor values.
func withoutKey(err error) string {
	msg := err.Error()
	inner := errors.Unwrap(err)
	if inner == nil {
		return msg
	}
	head, ok := strings.CutSuffix(msg, ": "+inner.Error())
	if !ok {
		return msg
	}
	if i := strings.IndexByte(head, '"'); i >= 0 {
		head = strings.TrimSpace(head[:i])
	}
	return head + ": " + withoutKey(inner)
}

// run logs the breaker's transitions and the summaries until ctx ends.
func (w *storeWatch) run(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	var (
		open     bool
		openedAt time.Time
		last     = w.stats() // at the last transition, or the start
		// The last summary: when, and the counts then.
		summarized                = time.Now()
		failuresThen, answersThen uint64
	)
	answersThen = last.PolicyAnswers
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := w.stats()
			switch {
			case st.BreakerOpen && !open:
				open, openedAt = true, now
				w.log.Warn("store breaker opened: calls are answered by the fail policy", "last_err", w.last(), "breaker_opens", st.BreakerOpens)
			case !st.BreakerOpen && open:
				open = false
				w.log.Info("store breaker closed: Redis answers again", "open_for", now.Sub(openedAt).Round(time.Second).String(),
					"policy_answers", st.PolicyAnswers-last.PolicyAnswers)
				last = st
			case !st.BreakerOpen && st.BreakerOpens > last.BreakerOpens:
				w.log.Warn("store breaker opened and closed again within a second", "last_err", w.last(),
					"policy_answers", st.PolicyAnswers-last.PolicyAnswers, "breaker_opens", st.BreakerOpens)
				last = st
			}
			if failures := w.failureCount(); failures > failuresThen && now.Sub(summarized) >= summaryEvery || failures > failuresThen && failuresThen == 0 {
				w.log.Warn("store failing", "failures", failures-failuresThen, "policy_answers", st.PolicyAnswers-answersThen,
					"in", now.Sub(summarized).Round(time.Second).String(), "last_err", w.last())
				summarized, failuresThen, answersThen = now, failures, st.PolicyAnswers
			}
		}
	}
}

func (w *storeWatch) failureCount() uint64 {
	var n uint64
	for i := range w.failures {
		n += w.failures[i].Load()
	}
	return n
}

func (w *storeWatch) last() string {
	if p := w.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// collectors returns the store's metrics.
func (w *storeWatch) collectors() []prometheus.Collector {
	stat := func(f func(redisstore.Stats) float64) func() float64 {
		return func() float64 { return f(w.stats()) }
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ratelimitd_store_breaker_open", Help: "1 while the store's circuit breaker is open: calls are answered by the fail policy without trying Redis."},
			stat(func(s redisstore.Stats) float64 {
				if s.BreakerOpen {
					return 1
				}
				return 0
			})),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ratelimitd_store_breaker_opens_total", Help: "Times the store's circuit breaker opened."},
			stat(func(s redisstore.Stats) float64 { return float64(s.BreakerOpens) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ratelimitd_store_calls_total", Help: "Calls to the store."},
			stat(func(s redisstore.Stats) float64 { return float64(s.Calls) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ratelimitd_store_retries_total", Help: "Calls retried after an error proving Redis did not run them."},
			stat(func(s redisstore.Stats) float64 { return float64(s.Retries) })),
	}
	// A call is answered by policy after its own failure, or without trying Redis while
	// the breaker is open.
	for _, reason := range []string{"failure", "breaker_open"} {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ratelimitd_store_policy_answers_total", Help: "Calls answered by the fail policy instead of Redis, by reason: the call failed, or the breaker was open.",
			ConstLabels: prometheus.Labels{"reason": reason},
		}, stat(func(s redisstore.Stats) float64 {
			if reason == "failure" {
				return float64(min(s.Failures, s.PolicyAnswers))
			}
			return float64(s.PolicyAnswers - min(s.Failures, s.PolicyAnswers))
		})))
	}
	for i, kind := range failureKinds {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ratelimitd_store_failures_total", Help: "Failures of Redis calls, by kind: timeout, refused (a refused or failed dial), not_connected (before the first connection), server (an error reply), other.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(w.failures[i].Load()) }))
	}
	return cs
}
