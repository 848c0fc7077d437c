package httplimit

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit/concurrency"
)

// Concurrency limits the requests a handler serves at once with a
// [concurrency.Limiter], whose limit adapts to the handler's capacity. A request over
// the limit is answered 503 Service Unavailable with Retry-After and an RFC 9457 problem
// body; an admitted one is timed from the moment the next handler is called to the
// moment it returns, and its outcome is classified by Classify.
//
// Put it inside the rate-limit [Middleware], so requests over a client's rate limit are
// refused before they take a slot:
//
//	mw.Handler(conc.Handler(app))
//
// The zero value, or one with a nil Limiter, passes every request through. A Concurrency
// is safe for concurrent use; its fields must not change once in use.
type Concurrency struct {
	// Limiter decides admission. Default nil: no limit.
	Limiter *concurrency.Limiter

	// Partition, if set, names the partition of the Limiter a request belongs to, such
	// as "interactive" or "batch" (see [concurrency.Options.Partitions]). Default nil:
	// requests belong to no partition.
	Partition func(*http.Request) string

	// Classify says what a request's outcome tells the Limiter, from the status the
	// handler wrote (200 when it wrote none) and the request, whose context may have
	// ended. Default [ClassifyStatus].
	Classify func(status int, r *http.Request) concurrency.Outcome

	// RetryAfter is the wait the Retry-After header of a 503 suggests, rounded up to
	// whole seconds. Default 1s.
	RetryAfter time.Duration

	// DenyHandler writes the response to a request that was not admitted; Retry-After
	// is already set on w. Default: [WriteProblem] with status 503.
	DenyHandler func(w http.ResponseWriter, r *http.Request, reason concurrency.Reason)
}

// ClassifyStatus is the default classification of [Concurrency.Classify]: a request
// whose context's deadline passed, or answered with a 5xx status other than 501 Not
// Implemented, is [concurrency.Dropped] (a sign of overload); one whose client went away
// (its context canceled) is [concurrency.Ignored]; any other is [concurrency.Success].
func ClassifyStatus(status int, r *http.Request) concurrency.Outcome {
	switch err := r.Context().Err(); {
	case errors.Is(err, context.DeadlineExceeded):
		return concurrency.Dropped
	case err != nil:
		return concurrency.Ignored
	}
	if status >= 500 && status != http.StatusNotImplemented {
		return concurrency.Dropped
	}
	return concurrency.Success
}

// Handler returns next guarded by c.
func (c *Concurrency) Handler(next http.Handler) http.Handler {
	if c.Limiter == nil {
		return next
	}
	classify := c.Classify
	if classify == nil {
		classify = ClassifyStatus
	}
	retry := strconv.FormatInt(int64(max((c.RetryAfter+time.Second-1)/time.Second, 1)), 10)
	if c.RetryAfter == 0 {
		retry = "1"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var tok concurrency.Token
		var err error
		if c.Partition != nil {
			tok, err = c.Limiter.Partition(c.Partition(r)).Acquire(r.Context())
		} else {
			tok, err = c.Limiter.Acquire(r.Context())
		}
		if err != nil {
			return // the client went away while queued: nobody to answer
		}
		if !tok.Allowed() {
			w.Header().Set("Retry-After", retry)
			if c.DenyHandler != nil {
				c.DenyHandler(w, r, tok.Reason())
				return
			}
			WriteProblem(w, r, &Decision{Status: http.StatusServiceUnavailable})
			return
		}
		sw := statusWriter{ResponseWriter: w}
		outcome := concurrency.Dropped // if next panics
		defer func() { tok.Release(outcome) }()
		next.ServeHTTP(&sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		outcome = classify(sw.status, r)
	})
}

// statusWriter records the status a handler writes. Unwrap lets
// [http.ResponseController] reach the writer's other methods (Flush, Hijack, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data, when the underlying writer can.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}
