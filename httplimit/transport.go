package httplimit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/adaptive"
)

// Transport is an [http.RoundTripper] that limits outgoing requests: client-side
// throttling for calling someone else's API within its published limits.
//
// Before sending, RoundTrip waits for one unit of the request's key from Limiter
// ([ratelimit.Limiter.Wait] with the request's context), so requests leave spaced as the
// limit allows. With RespectRetryAfter, a 429 or 503 answer carrying Retry-After holds
// back every later request to the same key until then. The answer itself is returned to
// the caller as is: Transport never retries unless MaxRetries is set, and then only
// requests that are safe to send twice.
//
// The zero value sends through [http.DefaultTransport] without limits. A Transport is
// safe for concurrent use; its fields must not change once in use.
type Transport struct {
	// Base sends the requests. Default [http.DefaultTransport].
	Base http.RoundTripper

	// Limiter, if set, spaces requests: each waits for one unit of its key. Default nil:
	// no client-side limit.
	Limiter *ratelimit.Limiter

	// Key returns the key a request is limited and held back by. Default: the request's
	// host (URL.Host), so each API gets its own budget.
	Key func(*http.Request) string

	// RespectRetryAfter makes a 429 Too Many Requests or 503 Service Unavailable answer
	// with a Retry-After header (seconds or an HTTP date) hold back later requests to
	// the same key until that instant, capped at MaxHold. Requests waiting for a hold
	// return early with an error when their context ends first, or at once when their
	// deadline comes before the hold ends.
	RespectRetryAfter bool

	// MaxHold caps the hold a single Retry-After can impose, so that a misbehaving
	// server cannot stall its clients indefinitely. Default one minute.
	MaxHold time.Duration

	// MaxRetries, if positive, lets RoundTrip resend a request answered 429 or 503 with
	// a Retry-After no longer than MaxHold, after waiting for it, up to MaxRetries times.
	// Only requests without a body and with an idempotent method (GET, HEAD, OPTIONS,
	// TRACE, PUT, DELETE) are resent; the answer to any other is returned. Default 0:
	// never resend.
	MaxRetries int

	// Throttle, if set, rejects requests locally, with an error wrapping
	// [adaptive.ErrThrottled], while the backend rejects most of them: with the
	// probability of the SRE book's client-side throttling (see [adaptive.Throttle]),
	// counting as accepted every answer that is not a 429 or a 503, and as rejected those
	// and transport errors. Each resend counts as a request. One Throttle is shared by
	// every key. Default nil: no throttling.
	Throttle *adaptive.Throttle

	mu    sync.Mutex
	holds map[string]time.Time // key → instant until which requests wait
}

const defaultMaxHold = time.Minute

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	key := t.key(req)
	for attempt := 0; ; attempt++ {
		resp, err := t.send(req, key)
		if err != nil {
			return resp, err
		}
		wait, resend := t.retryAfter(req, resp, key, attempt)
		if !resend {
			return resp, nil
		}
		// Let the connection be reused, then wait and resend.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if !t.RespectRetryAfter { // else the hold on key makes the next send wait
			if err := sleep(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	}
}

// send sends req once, unless the Throttle rejects it locally, after waiting for key to
// be neither held nor over the Limiter's limit.
func (t *Transport) send(req *http.Request, key string) (*http.Response, error) {
	// Throttle first: a request rejected locally takes no unit of the Limiter.
	if t.Throttle != nil && !t.Throttle.Allow() {
		closeBody(req)
		return nil, fmt.Errorf("httplimit: %s %s: %w", req.Method, key, adaptive.ErrThrottled)
	}
	if err := t.wait(req.Context(), key); err != nil {
		closeBody(req)
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if t.Throttle != nil && err == nil && !backOff(resp.StatusCode) {
		t.Throttle.Accepted()
	}
	return resp, err
}

// backOff reports whether status asks the client to come back later: 429 Too Many
// Requests or 503 Service Unavailable.
func backOff(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// retryAfter acts on the answer resp to the attempt-th resend of req (0 for the first
// send): a 429 or 503 with a Retry-After holds key back, with RespectRetryAfter, and when
// req may be resent retryAfter returns how long to wait first and true.
func (t *Transport) retryAfter(req *http.Request, resp *http.Response, key string, attempt int) (time.Duration, bool) {
	if !t.RespectRetryAfter && t.MaxRetries <= 0 || !backOff(resp.StatusCode) {
		return 0, false
	}
	d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if !ok {
		return 0, false
	}
	hold := min(d, t.maxHold())
	if t.RespectRetryAfter {
		t.hold(key, time.Now().Add(hold))
	}
	if attempt >= t.MaxRetries || d > t.maxHold() || !replayable(req) {
		return 0, false
	}
	return hold, true
}

func (t *Transport) key(req *http.Request) string {
	if t.Key != nil {
		return t.Key(req)
	}
	if req.URL != nil {
		return req.URL.Host
	}
	return req.Host
}

func (t *Transport) maxHold() time.Duration {
	if t.MaxHold > 0 {
		return t.MaxHold
	}
	return defaultMaxHold
}

// wait blocks until key is neither held nor over the limit.
func (t *Transport) wait(ctx context.Context, key string) error {
	if until, ok := t.heldUntil(key); ok {
		d := time.Until(until)
		if deadline, ok := ctx.Deadline(); ok && deadline.Before(until) {
			return fmt.Errorf("httplimit: %q is held back for %v by Retry-After, beyond the deadline: %w", key, d.Round(time.Millisecond), context.DeadlineExceeded)
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if t.Limiter == nil {
		return nil
	}
	return t.Limiter.Wait(ctx, key)
}

func (t *Transport) heldUntil(key string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.holds[key]
	if ok && !time.Now().Before(until) {
		delete(t.holds, key)
		return time.Time{}, false
	}
	return until, ok
}

// hold holds key back until the later of until and any hold already in place.
func (t *Transport) hold(key string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.holds == nil {
		t.holds = make(map[string]time.Time)
	}
	if len(t.holds) >= 64 { // forget expired holds so the map stays small
		now := time.Now()
		for k, u := range t.holds {
			if !now.Before(u) {
				delete(t.holds, k)
			}
		}
	}
	if cur, ok := t.holds[key]; !ok || until.After(cur) {
		t.holds[key] = until
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// parseRetryAfter parses a Retry-After value, delay-seconds or an HTTP date, as a wait
// from now; a date in the past is a wait of 0.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(1<<62/time.Second) {
			return 1 << 62, true // absurdly long: capped by MaxHold
		}
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}

// replayable reports whether req can be sent again: no body, and an idempotent method.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// closeBody closes the body of a request that will not be sent, as RoundTrip must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
