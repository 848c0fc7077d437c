// Package engine decides rate limit requests: it matches each descriptor of a request to a
// rule, asks the store for all enforced rules at once, and builds the per-descriptor
// answers the RLS and JSON APIs return. It is protocol-free; the servers convert.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/logsample"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// Limits on one request, so that a hostile caller cannot make one call arbitrarily
// expensive.
const (
	MaxDescriptors = 64
	MaxEntries     = 32
	// maxOverride is the longest window a limit override may ask for: 100 years.
	maxOverride = 100 * 365 * 24 * time.Hour
)

// ErrInvalidRequest marks a request the engine refuses to decide; the servers answer it
// with InvalidArgument or 400.
var ErrInvalidRequest = errors.New("invalid request")

// Code is the outcome of a descriptor or a request.
type Code uint8

const (
	OK Code = iota + 1
	OverLimit
)

func (c Code) String() string {
	if c == OverLimit {
		return "OVER_LIMIT"
	}
	return "OK"
}

// Outcome is how one request to the service ended, as the front ends report it to the
// [Observer] and the metrics label it (ratelimitd_requests_total's code).
type Outcome uint8

const (
	OutcomeOK        Outcome = iota + 1 // decided, every descriptor allowed
	OutcomeOverLimit                    // decided, a descriptor over its limit
	OutcomeInvalid                      // refused: malformed, or outside the request caps
	OutcomeError                        // the store could not decide
)

// NumOutcomes is the number of outcomes: each Outcome o is 1 <= o <= NumOutcomes.
const NumOutcomes = int(OutcomeError)

var outcomeNames = [...]string{"", "OK", "OVER_LIMIT", "INVALID", "ERROR"}

// String returns the outcome's label: "OK", "OVER_LIMIT", "INVALID" or "ERROR".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Outcome returns the outcome of a decided request: OutcomeOverLimit when a descriptor is
// over its limit, else OutcomeOK.
func (r *Response) Outcome() Outcome {
	if r.Code == OverLimit {
		return OutcomeOverLimit
	}
	return OutcomeOK
}

// ErrorOutcome returns the outcome of a request Decide refused with err: OutcomeInvalid
// for a malformed request (or a key or cost the store refuses), OutcomeError for a store
// that could not decide.
func ErrorOutcome(err error) Outcome {
	if errors.Is(err, ErrInvalidRequest) || errors.Is(err, ratelimit.ErrInvalidKey) || errors.Is(err, ratelimit.ErrInvalidCost) {
		return OutcomeInvalid
	}
	return OutcomeError
}

// Request is one ShouldRateLimit call.
type Request struct {
	Domain      string
	Descriptors []Descriptor
	// Hits is the request's hits_addend: the units each descriptor without its own Hits
	// takes. 0 means 1, as in envoyproxy/ratelimit.
	Hits uint64
}

// Descriptor is one descriptor of a request.
type Descriptor struct {
	Entries []rules.Entry
	// Hits, when HasHits, is this descriptor's own hits_addend; 0 checks without taking.
	Hits    uint64
	HasHits bool
	// Override, when set, replaces the rule the entries would match.
	Override *Override
	// NegativeHits marks a descriptor that asks to return units (RLS is_negative_hits),
	// which the engine refuses.
	NegativeHits bool
}

// Override is a limit a request carries for one descriptor: RequestsPerUnit per
// Multiplier units (0 means 1), in a fixed window.
type Override struct {
	RequestsPerUnit uint32
	Unit            rules.Unit
	Multiplier      uint32
}

// Response is the decision on a Request.
type Response struct {
	Code Code
	// Statuses holds one Status per descriptor, in request order.
	Statuses []Status
	// Headers are the rate-limit response headers in the engine's HeaderStyle.
	Headers []Header
	// UnknownDomain reports a domain no loaded rule names: every descriptor is then
	// Unmatched.
	UnknownDomain bool
}

// Status is the decision on one descriptor.
type Status struct {
	Code Code
	// Rule is the rule that applied, nil when none did. An unlimited rule is reported
	// with Rule nil and Remaining MaxUint32, as envoyproxy/ratelimit reports it.
	Rule *rules.Rule
	// Remaining is the number of units left after this call, 0 when over the limit.
	Remaining uint32
	// ResetAfter is, when allowed, the time until the rule is back to full capacity (for a
	// fixed window: until the window ends); when over the limit, the time until the same
	// hits can pass.
	ResetAfter time.Duration
	// Shadow reports a shadow-mode rule that was over its limit; Code is OK then.
	Shadow bool
	// Unmatched reports a descriptor no rule of the domain matched (or of an unknown
	// domain): it is allowed, as envoyproxy/ratelimit allows it, and Rule is nil.
	Unmatched bool
}

// Header is one response header.
type Header struct{ Name, Value string }

// Observer receives what the service decides: the engine's decisions, and each request a
// front end answered. The metrics and the live dashboard implement it. Its methods are
// called concurrently.
//
// It is not [ratelimit.Observer]: a ratelimit.Event names one key and its outcome, while
// the service counts per descriptor the rule, the entries (for detailed metrics), the
// units left (for near_limit) and shadow mode, and per request the transport.
type Observer interface {
	// Decided reports the decision on one descriptor that matched a rule, or that no rule
	// matched (st.Unmatched).
	Decided(domain string, entries []rules.Entry, st *Status, hits uint64)
	// Failed reports a request of domain the store could not decide.
	Failed(domain string, err error)
	// Latency reports the time one Decide took.
	Latency(domain string, d time.Duration)
	// Served reports a request a front end answered over transport ("grpc", "json" or
	// "http") and how it ended, including a request it could not decode.
	Served(transport string, o Outcome)
}

// Options configures an Engine. A nil *Options means the defaults.
type Options struct {
	// Headers selects the response headers, in the styles of httplimit. Default
	// httplimit.HeadersIETF, the zero value; the service passes its -headers flag, whose
	// default is none.
	Headers httplimit.HeaderStyle
	// Observer receives every decision. Default none.
	Observer Observer
	// Logger receives, at debug level, a line for each request with a descriptor no rule
	// matched, at most one a second: each line counts the requests not logged since the
	// previous one. Default none.
	Logger *slog.Logger
	// Route returns the store that decides rule r's hits, or nil for the Engine's store:
	// the service routes the rules of consistency eventual to lease stores. It is called
	// for every descriptor a rule decides and must be fast. Default: the Engine's store
	// for every rule.
	Route func(r *rules.Rule) ratelimit.Store
}

// Engine decides requests against the current rule set. It is safe for concurrent use;
// SetRules swaps the rules atomically, so each request sees one set, old or new.
type Engine struct {
	store   ratelimit.Store
	route   func(*rules.Rule) ratelimit.Store
	rules   atomic.Pointer[rules.Set]
	headers httplimit.HeaderStyle
	obs     Observer
	log     *slog.Logger
	// unmatched samples the log lines of requests with unmatched descriptors.
	unmatched logsample.Sampler
}

// New returns an Engine over store, starting with set.
func New(store ratelimit.Store, set *rules.Set, opts *Options) *Engine {
	e := &Engine{store: store, unmatched: logsample.Sampler{Interval: time.Second}}
	if opts != nil {
		e.headers, e.obs, e.log, e.route = opts.Headers, opts.Observer, opts.Logger, opts.Route
	}
	e.rules.Store(set)
	return e
}

// Served reports to the Observer that a front end answered a request over transport with
// outcome o.
func (e *Engine) Served(transport string, o Outcome) {
	if e.obs != nil {
		e.obs.Served(transport, o)
	}
}

// Rules returns the current rule set.
func (e *Engine) Rules() *rules.Set { return e.rules.Load() }

// SetRules replaces the rule set.
func (e *Engine) SetRules(s *rules.Set) { e.rules.Store(s) }

// UpdateRules replaces the rule set with f applied to the current one, retrying if another
// change lands in between. An error from f leaves the rules as they were.
func (e *Engine) UpdateRules(f func(*rules.Set) (*rules.Set, error)) error {
	for {
		old := e.rules.Load()
		n, err := f(old)
		if err != nil {
			return err
		}
		if e.rules.CompareAndSwap(old, n) {
			return nil
		}
	}
}

// Decide decides req. It is where every request is validated: it returns an error
// wrapping ErrInvalidRequest for a malformed request or one beyond the request caps
// (MaxDescriptors, MaxEntries), or the store's error when the store could not decide (the Redis store's
// FailError policy); otherwise the Response.
func (e *Engine) Decide(ctx context.Context, req *Request) (*Response, error) {
	if err := validate(req); err != nil {
		return nil, err
	}
	if e.obs == nil {
		return e.decide(ctx, req)
	}
	start := time.Now()
	resp, err := e.decide(ctx, req)
	e.obs.Latency(req.Domain, time.Since(start))
	return resp, err
}

// decide is Decide on a valid request.
func (e *Engine) decide(ctx context.Context, req *Request) (*Response, error) {
	set := e.rules.Load()
	p := newPlan(set, req, e.storeOf)
	resp := &Response{Code: OK, Statuses: p.statuses, UnknownDomain: !set.Has(req.Domain)}
	if err := e.run(ctx, &p); err != nil {
		if e.obs != nil {
			e.obs.Failed(req.Domain, err)
		}
		return nil, err
	}
	unmatched := 0
	for i := range resp.Statuses {
		st := &resp.Statuses[i]
		if st.Code == OverLimit {
			resp.Code = OverLimit
		}
		if st.Unmatched {
			unmatched++
		}
		if e.obs != nil && (st.Rule != nil || st.Unmatched) {
			e.obs.Decided(req.Domain, req.Descriptors[i].Entries, st, p.descs[i].hits)
		}
	}
	if unmatched > 0 {
		e.logUnmatched(ctx, req, resp, unmatched)
	}
	resp.Headers = headers(e.headers, resp)
	return resp, nil
}

// logUnmatched logs, sampled, a request with unmatched descriptors: the first one that
// no rule matched, by its entries.
func (e *Engine) logUnmatched(ctx context.Context, req *Request, resp *Response, unmatched int) {
	if e.log == nil || !e.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	log, unlogged := e.unmatched.Sample(time.Now())
	if !log {
		return
	}
	var first []rules.Entry
	for i := range resp.Statuses {
		if resp.Statuses[i].Unmatched {
			first = req.Descriptors[i].Entries
			break
		}
	}
	e.log.LogAttrs(ctx, slog.LevelDebug, "no rule matched; allowed",
		slog.String("domain", req.Domain), slog.Bool("known_domain", !resp.UnknownDomain),
		slog.Int("unmatched", unmatched), slog.Int("descriptors", len(req.Descriptors)),
		slog.String("entries", entriesText(first)), slog.Int("unlogged", unlogged))
}

// entriesText writes entries as key="value" pairs, comma-separated.
func entriesText(entries []rules.Entry) string {
	var b []byte
	for i, en := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, en.Key...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, en.Value)
	}
	return string(b)
}

// validate is the one validation of a request, whichever front end converted it.
func validate(req *Request) error {
	switch {
	case req.Domain == "":
		return fmt.Errorf("%w: rate limit domain must not be empty", ErrInvalidRequest)
	case len(req.Descriptors) == 0:
		return fmt.Errorf("%w: rate limit descriptor list must not be empty", ErrInvalidRequest)
	case len(req.Descriptors) > MaxDescriptors:
		return fmt.Errorf("%w: %d descriptors, at most %d are allowed", ErrInvalidRequest, len(req.Descriptors), MaxDescriptors)
	}
	for i, d := range req.Descriptors {
		switch {
		case d.NegativeHits:
			return fmt.Errorf("%w: descriptor %d: negative hits (returning units) are not supported", ErrInvalidRequest, i)
		case len(d.Entries) == 0:
			return fmt.Errorf("%w: descriptor %d has no entries", ErrInvalidRequest, i)
		case len(d.Entries) > MaxEntries:
			return fmt.Errorf("%w: descriptor %d has %d entries, at most %d are allowed", ErrInvalidRequest, i, len(d.Entries), MaxEntries)
		}
		if d.Override != nil {
			u, ok := rules.UnitDuration(d.Override.Unit)
			if !ok {
				return fmt.Errorf("%w: descriptor %d: limit override has unit %v", ErrInvalidRequest, i, d.Override.Unit)
			}
			if m := max(d.Override.Multiplier, 1); time.Duration(m) > maxOverride/u {
				return fmt.Errorf("%w: descriptor %d: limit override of %d × %v is too long", ErrInvalidRequest, i, m, d.Override.Unit)
			}
		}
	}
	return nil
}

// hitsOf returns the units descriptor d of req takes.
func hitsOf(req *Request, d *Descriptor) uint64 {
	if d.HasHits {
		return d.Hits
	}
	return max(req.Hits, 1)
}

// cost converts hits to the store's unit count; more than any capacity stays more.
func cost(h uint64) int {
	return int(min(h, math.MaxInt32))
}

// storeKey returns the store key of one descriptor: the domain and every key and value,
// each preceded by its length so that no choice of values can collide with another. A
// value counted under a share_threshold wildcard is replaced by the wildcard.
func storeKey(domain string, entries []rules.Entry, shared []string) string {
	n := len(domain) + 4
	for _, e := range entries {
		n += len(e.Key) + len(e.Value) + 12
	}
	b := make([]byte, 0, n)
	b = appendField(b, domain)
	for i, e := range entries {
		v := e.Value
		if shared[i] != "" {
			v = shared[i]
		}
		b = append(b, '|')
		b = appendField(b, e.Key)
		b = append(b, '=')
		b = appendField(b, v)
	}
	return string(b)
}

func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
