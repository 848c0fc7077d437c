package adaptive

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/concurrency"
)

// Signal reports the server's load, from 0 (no load: the full rate) to 1 (overloaded:
// the floor). Values outside [0, 1] are clamped. It is called once per update, from one
// goroutine at a time.
type Signal func() float64

// RateOptions configures a [Rate]. The zero value, or nil, gives the defaults.
type RateOptions struct {
	// Floor is the fraction of the configured rate (and burst) left at full load, in
	// (0, 1]. Default 0.25.
	Floor float64

	// Interval is the time between updates of [Rate.Run]. Default 1s.
	Interval time.Duration

	// Tighten is the time constant of the smoothed load when the signal is above it: a
	// step of the load from 0 to 1 brings the smoothed load to 63% after Tighten, 95%
	// after three times it. Default 2s.
	Tighten time.Duration

	// Relax is the time constant when the signal is below the smoothed load, longer so
	// that the limit comes back slowly and does not oscillate with a load that returns
	// as soon as it is let through. Default 30s.
	Relax time.Duration
}

// Rate moves a [ratelimit.Limiter]'s limit between a floor and its configured limit from
// a load signal, so that one configuration can say "100/s per user, less when the server
// struggles". Wherever the Limiter is used (directly, in httplimit or grpclimit rules, in
// the service) the limit in force is the one Rate last set.
//
// The control law, applied at each update, with Δt the time since the previous one:
//
//	s      = clamp(Signal(), 0, 1)
//	τ      = Tighten if s > x, else Relax
//	x     ← x + (s − x) · (1 − e^(−Δt/τ))           the smoothed load, starting at 0
//	factor = Floor + (1 − Floor) · (1 − x)
//	Rate   = max(1, round(configured.Rate × factor)), Burst likewise when set
//
// So the limit follows the load as a first-order low-pass filter: fast down (time
// constant Tighten, default 2 s), slow up (Relax, default 30 s). With the defaults, a
// server that becomes overloaded brings a 100/s limit to 53/s within 2 s and to 29/s
// within 6 s; once it recovers, the limit is back to 72/s after 30 s and 96/s after 90 s.
//
// Create it with [NewRate] and run [Rate.Run] in a goroutine, or call [Rate.Update]
// yourself. It is safe for concurrent use.
type Rate struct {
	lim        *ratelimit.Limiter
	signal     Signal
	configured ratelimit.Limit
	opts       RateOptions

	mu   sync.Mutex
	load float64
	last time.Time
}

// NewRate returns a Rate moving lim's limit below the one it has now, its configured
// limit, by signal.
func NewRate(lim *ratelimit.Limiter, signal Signal, opts *RateOptions) *Rate {
	var o RateOptions
	if opts != nil {
		o = *opts
	}
	if !(o.Floor > 0 && o.Floor <= 1) {
		o.Floor = 0.25
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Tighten <= 0 {
		o.Tighten = 2 * time.Second
	}
	if o.Relax <= 0 {
		o.Relax = 30 * time.Second
	}
	return &Rate{lim: lim, signal: signal, configured: lim.Limit(), opts: o, last: time.Now()}
}

// Configured returns the limit at no load.
func (r *Rate) Configured() ratelimit.Limit { return r.configured }

// Load returns the smoothed load, in [0, 1].
func (r *Rate) Load() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.load
}

// Update reads the signal, applies the control law and sets the Limiter's limit; it
// returns the limit set.
func (r *Rate) Update() ratelimit.Limit {
	s := r.signal()
	if math.IsNaN(s) {
		s = 0
	}
	s = min(max(s, 0), 1)
	r.mu.Lock()
	now := time.Now()
	dt := now.Sub(r.last)
	r.last = now
	tau := r.opts.Relax
	if s > r.load {
		tau = r.opts.Tighten
	}
	r.load += (s - r.load) * (1 - math.Exp(-float64(dt)/float64(tau)))
	factor := r.opts.Floor + (1-r.opts.Floor)*(1-r.load)
	r.mu.Unlock()
	next := r.configured
	next.Rate = max(1, int(math.Round(float64(next.Rate)*factor)))
	if next.Burst > 0 {
		next.Burst = max(1, int(math.Round(float64(next.Burst)*factor)))
	}
	if next != r.lim.Limit() {
		r.lim.SetLimit(next)
	}
	return next
}

// Run calls Update every Interval until ctx ends, then restores the configured limit
// and returns.
func (r *Rate) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.lim.SetLimit(r.configured)
			return
		case <-t.C:
			r.Update()
		}
	}
}

// ConcurrencyLoad is a Signal from a concurrency limiter's utilization: u, the most
// requests in flight at once in its last sample window divided by the limit then in
// force, maps to 0 up to threshold and rises linearly to 1 at full use:
// (u − threshold) / (1 − threshold). A limiter that sheds requests is fully used, so a
// rate limit driven by it tightens before the concurrency limiter has to refuse
// requests blindly. threshold is in [0, 1); outside it, 0.8.
func ConcurrencyLoad(l *concurrency.Limiter, threshold float64) Signal {
	if !(threshold >= 0 && threshold < 1) {
		threshold = 0.8
	}
	return func() float64 {
		last := l.Stats().Last
		if last.Limit == 0 {
			return 0
		}
		u := float64(last.MaxInFlight) / float64(last.Limit)
		return (u - threshold) / (1 - threshold)
	}
}
