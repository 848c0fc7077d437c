package concurrency

import (
	"math"
	"time"
)

// Sample is what one sample window measured, the input of an [Algorithm].
type Sample struct {
	Limit       int           // the limit in force during the window
	Successes   int           // requests released as Success
	Drops       int           // requests released as Dropped
	MinRTT      time.Duration // the smallest latency of a success; 0 when none
	AvgRTT      time.Duration // the mean latency of the successes; 0 when none
	MaxInFlight int           // the most requests in flight at once
	Elapsed     time.Duration // the window's length
}

// Algorithm computes the next limit from the current one and the last window's sample.
// The Limiter clamps the result to [Options.MinLimit, Options.MaxLimit] and rounds it
// down for admission, but hands the unrounded value back on the next call, so an
// algorithm can move by fractions. Update is called once per window, from one goroutine
// at a time.
type Algorithm interface {
	Update(limit float64, s Sample) float64
}

// Fixed is an Algorithm that keeps the limit at its value: a bulkhead. The value is
// clamped to the Limiter's bounds. A Fixed of 0 keeps the InitialLimit.
type Fixed int

// Update returns the fixed limit.
func (f Fixed) Update(limit float64, _ Sample) float64 {
	if f <= 0 {
		return limit
	}
	return float64(f)
}

// AIMD is additive increase, multiplicative decrease, TCP Reno's congestion rule: the
// limit grows by Increase per window while the requests succeed and use at least half
// of it, and is multiplied by Backoff after a window with a drop, or whose mean latency
// exceeds Timeout. Its equilibrium is a sawtooth just below the concurrency at which
// drops (or the timeout) begin; it needs that signal, so give it a Timeout for services
// that slow down before they fail. The zero value is usable.
type AIMD struct {
	// Increase is added to the limit per window. Default 1.
	Increase float64

	// Backoff multiplies the limit after a window with a drop. In (0, 1); default 0.9.
	Backoff float64

	// Timeout, if positive, makes a window whose mean latency is above it count as a
	// drop. Default 0: only drops back off.
	Timeout time.Duration
}

// Update applies the rule to one window.
func (a *AIMD) Update(limit float64, s Sample) float64 {
	inc, backoff := a.Increase, a.Backoff
	if inc <= 0 {
		inc = 1
	}
	if !(backoff > 0 && backoff < 1) {
		backoff = 0.9
	}
	if s.Drops > 0 || a.Timeout > 0 && s.AvgRTT > a.Timeout {
		return limit * backoff
	}
	if 2*float64(s.MaxInFlight) >= limit {
		return limit + inc
	}
	return limit
}

// Gradient2 follows the gradient of latency: it keeps a long-term average of the
// window's mean latency (an exponential average over LongWindow windows) and scales
// the limit by gradient = clamp(Tolerance × long / short, 0.5, 1), where short is the
// last window's mean latency, then adds Queue(limit) to probe for more:
//
//	next  = limit × gradient + Queue(limit)
//	limit = limit × (1 − Smoothing) + next × Smoothing
//
// While latency stays within Tolerance of its long-term level the limit grows by about
// Smoothing × Queue per window; when it rises faster than the long-term average follows,
// the gradient falls below 1 and the limit shrinks, by at most half per window. When the
// long-term average is more than twice the short one (the server recovered), it decays
// by 5% per window so the limit can grow again. The limit does not grow in a window
// that used less than half of it (the clients, not the server, were the bottleneck). A
// window of drops only counts as a gradient of 0.5. The zero value is usable.
type Gradient2 struct {
	// Tolerance is how much the latency may exceed its long-term average before the
	// limit shrinks: 1.5 tolerates 50%. At least 1; default 1.5.
	Tolerance float64

	// Smoothing is the weight of each new estimate, in (0, 1]. Default 0.2.
	Smoothing float64

	// LongWindow is the number of windows the long-term average spans. Default 600.
	LongWindow int

	// Queue returns the headroom added per window. Default 4 whatever the limit.
	Queue func(limit float64) float64

	long float64 // the long-term mean latency, ns
}

// Update applies the gradient rule to one window.
func (g *Gradient2) Update(limit float64, s Sample) float64 {
	tol, smooth, n := g.Tolerance, g.Smoothing, g.LongWindow
	if !(tol >= 1) {
		tol = 1.5
	}
	if !(smooth > 0 && smooth <= 1) {
		smooth = 0.2
	}
	if n <= 0 {
		n = 600
	}
	queue := 4.0
	if g.Queue != nil {
		queue = g.Queue(limit)
	}
	var gradient float64
	if s.Successes == 0 {
		if s.Drops == 0 {
			return limit
		}
		gradient, queue = 0.5, 0 // no success: no evidence of headroom
	} else {
		short := float64(s.AvgRTT)
		if g.long == 0 {
			g.long = short
		} else {
			g.long += (short - g.long) * 2 / float64(n+1)
		}
		if g.long/short > 2 {
			g.long *= 0.95
		}
		gradient = min(max(tol*g.long/short, 0.5), 1)
		if 2*float64(s.MaxInFlight) < limit && gradient == 1 {
			return limit // not using the limit: no evidence it could grow
		}
	}
	next := limit*gradient + queue
	return limit*(1-smooth) + next*smooth
}

// Vegas estimates the requests queued at the server, as TCP Vegas does for packets in
// the network: with rtt the window's mean latency and rttNoLoad the smallest window mean
// seen (the service time without queueing),
//
//	queue = limit × (1 − rttNoLoad / rtt)
//
// and moves the limit to keep that queue between Alpha and Beta:
//
//	queue ≤ Threshold(limit)  →  limit + Beta(limit)      (no queue: grow fast)
//	queue < Alpha(limit)      →  limit + Increase(limit)
//	queue > Beta(limit)       →  limit − Decrease(limit)
//	otherwise                 →  limit
//
// A window with a drop decreases the limit too. The defaults follow Netflix's
// concurrency-limits: Alpha = 3·log10(limit), Beta = 6·log10(limit), Threshold =
// Increase = Decrease = log10(limit) (limits below 10 count as 10), so the server is
// kept holding a queue of a few requests, enough not to go idle, few enough that the
// latency stays near rttNoLoad. With a server of knee k (k requests served at once,
// the others queued), the limit settles where limit − k is between Alpha and Beta: with
// the defaults about 3.5 to 7 above a knee of 10, 6 to 12 above one of 100. Alpha = Log10(1),
// Beta = Log10(2), Threshold = Log10(0.5) hold it within a quarter of knees from 10 up,
// at the price of idling a worker now and then when latencies vary; the repository's
// BENCHMARKS.md measures both in a closed loop.
// rttNoLoad is a smallest mean, not the smallest single latency as in TCP Vegas: with
// service times that vary from request to request, the fastest request is far below the
// typical no-load latency, and against it every window would look queued. The limit does
// not grow in a window that used less than half of it. Every
// ProbeInterval windows rttNoLoad is forgotten and measured again, so a service whose
// no-load latency rose is not starved. The zero value is usable.
type Vegas struct {
	// Alpha, Beta, Threshold, Increase and Decrease are functions of the limit, as
	// described above; nil means the default.
	Alpha, Beta, Threshold, Increase, Decrease func(limit float64) float64

	// Smoothing is the weight of each new estimate, in (0, 1]. Default 1: none.
	Smoothing float64

	// ProbeInterval is the number of windows between probes of rttNoLoad. Default 1000;
	// negative means never.
	ProbeInterval int

	rttNoLoad float64
	windows   int
}

// Log10 returns f scaled by log10(limit), limit counting as at least 10. It builds
// the threshold functions of [Vegas]: Log10(3) is its default Alpha.
func Log10(f float64) func(limit float64) float64 {
	return func(limit float64) float64 { return f * math.Log10(max(limit, 10)) }
}

var (
	vegasAlpha = Log10(3)
	vegasBeta  = Log10(6)
	vegasLog   = Log10(1)
)

func orDefault(f, d func(float64) float64) func(float64) float64 {
	if f != nil {
		return f
	}
	return d
}

// Update applies the Vegas rule to one window.
func (v *Vegas) Update(limit float64, s Sample) float64 {
	alpha := orDefault(v.Alpha, vegasAlpha)
	beta := orDefault(v.Beta, vegasBeta)
	threshold := orDefault(v.Threshold, vegasLog)
	increase := orDefault(v.Increase, vegasLog)
	decrease := orDefault(v.Decrease, vegasLog)
	smooth := v.Smoothing
	if !(smooth > 0 && smooth <= 1) {
		smooth = 1
	}
	probe := v.ProbeInterval
	if probe == 0 {
		probe = 1000
	}
	v.windows++
	if probe > 0 && v.windows%probe == 0 {
		v.rttNoLoad = 0
	}
	var next float64
	switch {
	case s.Drops > 0:
		next = limit - decrease(limit)
	case s.Successes == 0:
		return limit
	default:
		if avg := float64(s.AvgRTT); v.rttNoLoad == 0 || avg < v.rttNoLoad {
			v.rttNoLoad = avg
		}
		queue := math.Ceil(limit * (1 - v.rttNoLoad/float64(s.AvgRTT)))
		switch {
		case queue <= threshold(limit):
			next = limit + beta(limit)
		case queue < alpha(limit):
			next = limit + increase(limit)
		case queue > beta(limit):
			next = limit - decrease(limit)
		default:
			return limit
		}
		if next > limit && 2*float64(s.MaxInFlight) < limit {
			return limit
		}
	}
	return limit*(1-smooth) + next*smooth
}
