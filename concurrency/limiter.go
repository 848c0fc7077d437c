package concurrency

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// Outcome is what became of an admitted request, told to [Token.Release].
type Outcome uint8

// The outcomes of a request.
const (
	// Success: the request was served. Its latency is a measurement of the server.
	Success Outcome = iota + 1
	// Dropped: the request failed in a way that signals overload, such as a timeout or
	// a 503 from a dependency. Algorithms back off on drops; the latency is not used.
	Dropped
	// Ignored: the request tells nothing about the server's load (the client went
	// away, the request was invalid and rejected at once). Only its slot is given back.
	Ignored
)

// String returns "success", "dropped" or "ignored".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Dropped:
		return "dropped"
	case Ignored:
		return "ignored"
	}
	return "Outcome(?)"
}

// Reason says why [Limiter.Acquire] admitted a request or not.
type Reason uint8

// The reasons of an Acquire.
const (
	// Admitted: the request holds a slot until [Token.Release].
	Admitted Reason = iota + 1
	// LimitReached: as many requests as the limit allows are in flight, and the
	// Limiter keeps no queue (Options.MaxQueue is 0).
	LimitReached
	// QueueFull: the limit is reached and Options.MaxQueue callers already wait.
	QueueFull
	// QueueTimeout: the caller waited Options.MaxWait in the queue without a slot
	// freeing up for it.
	QueueTimeout
)

// String returns "admitted", "limit_reached", "queue_full" or "queue_timeout".
func (r Reason) String() string {
	switch r {
	case Admitted:
		return "admitted"
	case LimitReached:
		return "limit_reached"
	case QueueFull:
		return "queue_full"
	case QueueTimeout:
		return "queue_timeout"
	}
	return "Reason(?)"
}

// ErrInvalidOptions is wrapped by the error [New] returns for options it cannot use.
var ErrInvalidOptions = errors.New("concurrency: invalid options")

// Options configures a [Limiter]. The zero value, or nil, gives the defaults.
type Options struct {
	// Name identifies the limiter in the events its Observer hears (Event.Rule).
	// Default "".
	Name string

	// Algorithm moves the limit from the measurements of each sample window. Default
	// a new [Vegas] with its defaults. An Algorithm keeps state: give each Limiter its
	// own.
	Algorithm Algorithm

	// InitialLimit is the limit before the first window closes. Default 20, clamped to
	// [MinLimit, MaxLimit].
	InitialLimit int

	// MinLimit is the lowest limit the algorithm may set. Default 1.
	MinLimit int

	// MaxLimit is the highest limit the algorithm may set. Default 1000.
	MaxLimit int

	// Window is the shortest sample window; a window also lasts at least twice the
	// smallest latency seen in the previous one. Default 100 ms.
	Window time.Duration

	// MinSamples is the number of releases (successes and drops) a window needs before
	// it closes; a window with fewer stays open. Default 10.
	MinSamples int

	// MaxQueue bounds the callers that may wait for a slot when the limit is reached.
	// Waiting callers are served newest first (LIFO): under overload the oldest waiters,
	// whose clients are the likeliest to have given up, are the ones left to time out,
	// and fresh requests are served while they are still wanted. Default 0: no queue,
	// Acquire answers at once.
	MaxQueue int

	// MaxWait bounds the time a caller waits in the queue, on top of its context.
	// Default 0: only the context bounds it.
	MaxWait time.Duration

	// Partitions shares the limit between named partitions: each name's value is the
	// fraction of the limit guaranteed to it, such as {"interactive": 0.7, "batch":
	// 0.3}. Fractions are in (0, 1] and sum to at most 1. A partition below its share
	// (ceil(limit × fraction), at least 1) is admitted even when the limit is reached
	// by others; above it, it is admitted only while the whole limiter is under its
	// limit. So a partition that floods the limiter delays the others' requests by at
	// most the time its own excess takes to finish, and in-flight requests exceed the
	// limit by at most the partitions' shares while that happens. Requests in no
	// partition (Limiter.Acquire, or an unknown name) have no guaranteed share.
	// Default none.
	Partitions map[string]float64

	// Observer, if set, hears about every Acquire: Event.Rule is Name, Event.KeyClass
	// the partition ("" for none), Outcome is [ratelimit.Allowed] or
	// [ratelimit.Denied], Latency the time spent in Acquire, queueing included.
	// Default nil.
	Observer ratelimit.Observer
}

// Defaults of [Options].
const (
	DefaultInitialLimit = 20
	DefaultMinLimit     = 1
	DefaultMaxLimit     = 1000
	DefaultWindow       = 100 * time.Millisecond
	DefaultMinSamples   = 10
)

// Limiter limits the requests in flight to a limit its [Algorithm] adapts. Create it
// with [New]. It is safe for concurrent use.
type Limiter struct {
	// Written on every call.
	inflight atomic.Int64
	win      window
	_        [64]byte

	// Read on every call, written once per window.
	limit   atomic.Int64
	next    atomic.Int64 // instant (ns since epoch) from which the window may close
	waiting atomic.Int64 // callers in the queue
	_       [64]byte

	epoch    time.Time
	opts     Options
	rejected atomic.Uint64
	dropped  atomic.Uint64

	mu         sync.Mutex
	alg        Algorithm
	flimit     float64 // the algorithm's limit, before rounding
	winStart   int64
	last       Sample
	queue      []*waiter // a stack: newest last
	parts      map[string]*Partition
	partList   []*Partition
	unassigned Partition
}

// window accumulates the measurements of one sample window.
type window struct {
	count atomic.Int64 // successes
	sum   atomic.Int64 // their latencies, ns
	min   atomic.Int64 // the smallest, ns
	drops atomic.Int64
	maxIn atomic.Int64 // the most requests in flight at once
}

// New returns a Limiter configured by opts; nil opts gives the defaults. It fails, with an
// error wrapping [ErrInvalidOptions], when the bounds are inverted or negative or the
// partitions' fractions are out of range.
func New(opts *Options) (*Limiter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MinLimit < 0 || o.MaxLimit < 0 || o.InitialLimit < 0 || o.Window < 0 || o.MinSamples < 0 || o.MaxQueue < 0 || o.MaxWait < 0 {
		return nil, fmt.Errorf("%w: negative value", ErrInvalidOptions)
	}
	if o.MinLimit == 0 {
		o.MinLimit = DefaultMinLimit
	}
	if o.MaxLimit == 0 {
		o.MaxLimit = max(DefaultMaxLimit, o.MinLimit)
	}
	if o.MinLimit > o.MaxLimit {
		return nil, fmt.Errorf("%w: MinLimit %d above MaxLimit %d", ErrInvalidOptions, o.MinLimit, o.MaxLimit)
	}
	if o.InitialLimit == 0 {
		o.InitialLimit = DefaultInitialLimit
	}
	o.InitialLimit = min(max(o.InitialLimit, o.MinLimit), o.MaxLimit)
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Algorithm == nil {
		o.Algorithm = &Vegas{}
	}
	l := &Limiter{epoch: time.Now(), alg: o.Algorithm, flimit: float64(o.InitialLimit)}
	var sum float64
	names := make([]string, 0, len(o.Partitions))
	for name, f := range o.Partitions {
		if !(f > 0 && f <= 1) {
			return nil, fmt.Errorf("%w: partition %q has fraction %v, want one in (0, 1]", ErrInvalidOptions, name, f)
		}
		sum += f
		names = append(names, name)
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("%w: partition fractions sum to %v, above 1", ErrInvalidOptions, sum)
	}
	sort.Strings(names)
	l.parts = make(map[string]*Partition, len(names))
	for _, name := range names {
		p := &Partition{l: l, name: name, fraction: o.Partitions[name]}
		l.parts[name] = p
		l.partList = append(l.partList, p)
	}
	l.unassigned = Partition{l: l}
	l.opts = o
	l.limit.Store(int64(o.InitialLimit))
	l.setShares(o.InitialLimit)
	l.win.min.Store(math.MaxInt64)
	l.next.Store(int64(o.Window))
	return l, nil
}

// now returns the time since the Limiter was made, from the monotonic clock.
func (l *Limiter) now() int64 { return int64(time.Since(l.epoch)) }

// Limit returns the limit in force: at most that many requests are in flight at once
// (partitions below their share aside).
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of requests admitted and not yet released. A request being
// refused is counted for the instant between its attempt and its refusal, so a read can
// exceed the admitted count by the number of callers refused at that moment.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }

// Acquire admits a request if fewer than the limit are in flight, or else waits in the
// queue when Options.MaxQueue allows. The Token says whether it was admitted and, if not,
// why; an admitted Token must be released exactly once, with [Token.Release], when the
// request ends. The error is non-nil only when ctx ended while the caller waited in the
// queue: then the Token is not admitted.
//
// Acquire allocates nothing when it answers at once; waiting in the queue does.
func (l *Limiter) Acquire(ctx context.Context) (Token, error) {
	return l.acquire(ctx, nil)
}

// Partition returns the partition of the given name. An unknown name returns the
// partition of requests with no guaranteed share, which [Limiter.Acquire] also uses.
func (l *Limiter) Partition(name string) *Partition {
	if p, ok := l.parts[name]; ok {
		return p
	}
	return &l.unassigned
}

func (l *Limiter) acquire(ctx context.Context, p *Partition) (Token, error) {
	var start time.Time
	if l.opts.Observer != nil {
		start = time.Now()
	}
	if n, ok := l.admit(p); ok {
		l.noteInFlight(n)
		t := Token{l: l, p: p, start: l.now(), reason: Admitted}
		if l.opts.Observer != nil {
			l.observe(start, p, ratelimit.Allowed)
		}
		return t, nil
	}
	if l.waiting.Load() > 0 {
		l.dispatch()
	}
	t, err := l.wait(ctx, p)
	if l.opts.Observer != nil {
		o := ratelimit.Allowed
		if t.reason != Admitted {
			o = ratelimit.Denied
		}
		l.observe(start, p, o)
	}
	return t, err
}

func (l *Limiter) observe(start time.Time, p *Partition, o ratelimit.Outcome) {
	e := ratelimit.Event{Rule: l.opts.Name, Outcome: o, Latency: time.Since(start)}
	if p != nil {
		e.KeyClass = p.name
	}
	l.opts.Observer.Observe(e)
}

// admit takes a slot for a request of p if the limit, or p's share, allows it, and
// returns the number in flight with it.
func (l *Limiter) admit(p *Partition) (int64, bool) {
	n := l.inflight.Add(1)
	if p == nil {
		if n <= l.limit.Load() {
			return n, true
		}
	} else {
		pn := p.inflight.Add(1)
		if n <= l.limit.Load() || pn <= p.share.Load() {
			return n, true
		}
		p.inflight.Add(-1)
	}
	l.inflight.Add(-1)
	return 0, false
}

func (l *Limiter) noteInFlight(n int64) {
	for {
		m := l.win.maxIn.Load()
		if n <= m || l.win.maxIn.CompareAndSwap(m, n) {
			return
		}
	}
}

// Token is the answer of [Limiter.Acquire]: an admitted request's slot, or a denial
// with its reason. The zero Token is not admitted, and releasing it does nothing.
type Token struct {
	l      *Limiter
	p      *Partition
	start  int64
	reason Reason
}

// Allowed reports whether the request was admitted.
func (t Token) Allowed() bool { return t.reason == Admitted }

// Reason says why the request was admitted or not; 0 for the zero Token.
func (t Token) Reason() Reason { return t.reason }

// Release ends an admitted request: it gives back its slot and records its outcome
// and its latency, the time since Acquire admitted it (time spent in the queue is not
// counted). Call it exactly once per admitted Token: releasing a Token twice frees a slot
// that another request holds. Releasing a Token that was not admitted does nothing.
// Release allocates nothing; the first Release after a window's end recomputes the limit.
func (t Token) Release(o Outcome) {
	l := t.l
	if l == nil || t.reason != Admitted {
		return
	}
	now := l.now()
	if t.p != nil {
		t.p.inflight.Add(-1)
	}
	l.inflight.Add(-1)
	switch o {
	case Success:
		rtt := max(now-t.start, 1)
		l.win.count.Add(1)
		l.win.sum.Add(rtt)
		for {
			m := l.win.min.Load()
			if rtt >= m || l.win.min.CompareAndSwap(m, rtt) {
				break
			}
		}
	case Dropped:
		l.win.drops.Add(1)
		l.dropped.Add(1)
	}
	if l.waiting.Load() > 0 {
		l.dispatch()
	}
	if now >= l.next.Load() {
		l.closeWindow(now)
	}
}

// closeWindow ends the sample window if it is due and holds enough samples, and lets
// the algorithm set the next limit.
func (l *Limiter) closeWindow(now int64) {
	if !l.mu.TryLock() {
		return // another Release is closing it
	}
	defer l.mu.Unlock()
	if now < l.next.Load() {
		return
	}
	if l.win.count.Load()+l.win.drops.Load() < int64(l.opts.MinSamples) {
		return
	}
	count := l.win.count.Swap(0)
	sum := l.win.sum.Swap(0)
	minRTT := l.win.min.Swap(math.MaxInt64)
	drops := l.win.drops.Swap(0)
	maxIn := l.win.maxIn.Swap(l.inflight.Load())
	s := Sample{
		Limit:       int(l.limit.Load()),
		Successes:   int(count),
		Drops:       int(drops),
		MaxInFlight: int(maxIn),
		Elapsed:     time.Duration(now - l.winStart),
	}
	if count > 0 {
		s.MinRTT = time.Duration(minRTT)
		s.AvgRTT = time.Duration(sum / count)
	}
	next := l.alg.Update(l.flimit, s)
	if math.IsNaN(next) {
		next = l.flimit
	}
	next = min(max(next, float64(l.opts.MinLimit)), float64(l.opts.MaxLimit))
	l.flimit = next
	lim := int(next)
	l.limit.Store(int64(lim))
	l.setShares(lim)
	l.last = s
	l.winStart = now
	length := int64(l.opts.Window)
	if count > 0 {
		length = max(length, 2*minRTT)
	}
	l.next.Store(now + length)
	if lim > s.Limit && len(l.queue) > 0 {
		l.dispatchLocked()
	}
}

func (l *Limiter) setShares(lim int) {
	for _, p := range l.partList {
		p.share.Store(int64(max(1, math.Ceil(float64(lim)*p.fraction))))
	}
}

// Partition is a named share of a [Limiter]'s limit, from [Limiter.Partition]. It is
// safe for concurrent use.
type Partition struct {
	l        *Limiter
	name     string
	fraction float64
	inflight atomic.Int64
	share    atomic.Int64 // guaranteed slots: ceil(limit × fraction)
}

// Name returns the partition's name, "" for requests in no partition.
func (p *Partition) Name() string { return p.name }

// Acquire is [Limiter.Acquire] for a request of the partition: it is admitted while the
// partition holds fewer requests than its share of the limit, whatever the others hold,
// or while the limiter as a whole is under its limit.
func (p *Partition) Acquire(ctx context.Context) (Token, error) {
	if p == &p.l.unassigned {
		return p.l.acquire(ctx, nil)
	}
	return p.l.acquire(ctx, p)
}

// InFlight returns the partition's requests admitted and not yet released.
func (p *Partition) InFlight() int {
	if p == &p.l.unassigned {
		return 0
	}
	return int(p.inflight.Load())
}

// Share returns the slots guaranteed to the partition under the current limit.
func (p *Partition) Share() int { return int(p.share.Load()) }

// Stats is a snapshot of a [Limiter]'s state, for metrics.
type Stats struct {
	Limit    int    // the limit in force
	InFlight int    // requests admitted and not released
	Queued   int    // callers waiting for a slot
	Rejected uint64 // requests not admitted since the Limiter was made
	Dropped  uint64 // requests released as Dropped since the Limiter was made

	// Last is the sample of the last window closed; zero before the first.
	Last Sample
}

// Stats returns a snapshot of the limiter's counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	last := l.last
	l.mu.Unlock()
	return Stats{
		Limit:    l.Limit(),
		InFlight: l.InFlight(),
		Queued:   int(l.waiting.Load()),
		Rejected: l.rejected.Load(),
		Dropped:  l.dropped.Load(),
		Last:     last,
	}
}

// Partitions returns the limiter's partitions, by name.
func (l *Limiter) Partitions() []*Partition { return l.partList }
