package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/redisstore"
)

// leaseDefaults are the eventual mode's settings a Redis -store URL gives in its query
// (?consistency=eventual&sync=100ms&accuracy=0.01): the consistency of the rules that name
// none, the sync interval of the eventual rules that give none, and the accuracy ε of
// every eventual rule.
type leaseDefaults struct {
	mode     rules.Consistency // Strict or Eventual
	sync     time.Duration
	accuracy float64
}

// Defaults of the eventual mode: redisstore's.
const (
	defaultSync     = redisstore.DefaultLeaseInterval
	defaultAccuracy = redisstore.DefaultLeaseAccuracy
)

// takeLeaseParams removes consistency, sync and accuracy from q and returns them.
func takeLeaseParams(q url.Values) (leaseDefaults, error) {
	d := leaseDefaults{mode: rules.Strict, sync: defaultSync, accuracy: defaultAccuracy}
	defer func() { q.Del("consistency"); q.Del("sync"); q.Del("accuracy") }()
	if v := q.Get("consistency"); q.Has("consistency") {
		m, ok := rules.ParseConsistency(v)
		if !ok {
			return d, fmt.Errorf("consistency=%q: want strict or eventual", v)
		}
		d.mode = m
	}
	if v := q.Get("sync"); q.Has("sync") {
		s, ok := rules.ParseSync(v)
		if !ok {
			return d, fmt.Errorf("sync=%q: want a duration from %v to %v, such as 100ms", v, rules.MinSync, rules.MaxSync)
		}
		d.sync = s
	}
	if v := q.Get("accuracy"); q.Has("accuracy") {
		a, err := parseAccuracy(v)
		if err != nil {
			return d, fmt.Errorf("accuracy=%q: %w", v, err)
		}
		d.accuracy = a
	}
	return d, nil
}

// parseAccuracy reads ε, a fraction in (0, 1].
func parseAccuracy(v string) (float64, error) {
	a, err := strconv.ParseFloat(v, 64)
	if err != nil || !(a > 0 && a <= 1) {
		return 0, errors.New("want a fraction in (0, 1], such as 0.01")
	}
	return a, nil
}

// leases are the lease stores of the eventual rules: one per sync interval, on the
// strict store's client, opened when a rule first needs it and closed with the service.
type leases struct {
	strict *redisstore.Store
	def    leaseDefaults
	opts   redisstore.LeaseOptions // Interval aside

	bySync atomic.Pointer[map[time.Duration]*redisstore.LeaseStore] // copied on write
	mu     sync.Mutex                                               // orders opening and closing
	closed bool
}

// route returns the lease store of rule r, or nil when r is decided strictly: it names
// consistency strict, or names none while the store's default is strict or its algorithm
// is one the leases cannot decide (a rule that names eventual has a fitting algorithm:
// loading checked it).
func (l *leases) route(r *rules.Rule) ratelimit.Store {
	switch {
	case r.Consistency == rules.Strict:
		return nil
	case r.Consistency == rules.ConsistencyDefault && (l.def.mode != rules.Eventual || !rules.LeaseAlgorithm(r.Algorithm)):
		return nil
	}
	sync := r.Sync
	if sync == 0 {
		sync = l.def.sync
	}
	if m := l.bySync.Load(); m != nil {
		if s := (*m)[sync]; s != nil {
			return s
		}
	}
	return l.open(sync)
}

// open returns the lease store of interval sync, opening it.
func (l *leases) open(sync time.Duration) ratelimit.Store {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := map[time.Duration]*redisstore.LeaseStore{}
	if m := l.bySync.Load(); m != nil {
		old = *m
	}
	if s := old[sync]; s != nil {
		return s
	}
	if l.closed {
		return l.strict // closed too: its answer is ErrClosed
	}
	o := l.opts
	o.Interval = sync
	o.Accuracy = l.def.accuracy
	s := redisstore.NewLeaseFrom(l.strict, &o)
	m := maps.Clone(old)
	m[sync] = s
	l.bySync.Store(&m)
	return s
}

// close closes every lease store, giving their unspent units back to Redis, each bounded
// by the lease store's Timeout.
func (l *leases) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if m := l.bySync.Load(); m != nil {
		for _, s := range *m {
			_ = s.Close(context.Background()) // a failed release only strands units until the window ends
		}
	}
}

// eventualRules counts the rules of set that route decides from leases.
func eventualRules(set *rules.Set, def leaseDefaults) (n int) {
	for _, d := range set.Domains() {
		for _, r := range d.Rules {
			if r.Unlimited || r.Limit.Rate == 0 {
				continue
			}
			if r.Consistency == rules.Eventual || r.Consistency == rules.ConsistencyDefault && def.mode == rules.Eventual && rules.LeaseAlgorithm(r.Algorithm) {
				n++
			}
		}
	}
	return n
}

// logConsistency logs how many rules of set are decided from leases, or, on a store
// without leases, that their consistency: eventual does not apply.
func logConsistency(log *slog.Logger, st *store, set *rules.Set) {
	n := eventualRules(set, st.leaseDefaults)
	switch {
	case n == 0:
	case st.route == nil:
		log.Warn("consistency: eventual needs a Redis store; this store decides those rules as it decides the others", "rules", n)
	default:
		log.Info("rules decided from leases (consistency: eventual)", "rules", n,
			"default", st.leaseDefaults.mode.String(), "sync", st.leaseDefaults.sync.String(), "accuracy", st.leaseDefaults.accuracy)
	}
}
