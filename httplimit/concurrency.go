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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := statusWriter{ResponseWriter: w}
		c.Serve(w, r, func() int {
			next.ServeHTTP(&sw, r)
			return sw.status
		})
	})
}

// Serve guards one request by c, for adapters of other frameworks, which call it from
// their middleware as [Concurrency.Handler] does: it acquires a slot for r, then runs
// next, the rest of the framework's handler chain, which returns the status of the
// response it wrote (0 for none, taken as 200). The slot is released when next returns,
// with the outcome Classify makes of that status and r, or as [concurrency.Dropped] if
// next panics. Report the status after the framework's own error handling has set it,
// so that an error a handler returns is classified by the status it is answered with.
//
// A request over the limit is answered on w with Retry-After and the DenyHandler's
// response (the 503 problem of [WriteProblem] by default), and next is not called; nor
// is it when r's context ends while the request waits in the Limiter's queue, and then
// nothing is written. admitted reports whether next ran. With a nil Limiter next always
// runs.
func (c *Concurrency) Serve(w http.ResponseWriter, r *http.Request, next func() (status int)) (admitted bool) {
	if c.Limiter == nil {
		next()
		return true
	}
	var tok concurrency.Token
	var err error
	if c.Partition != nil {
		tok, err = c.Limiter.Partition(c.Partition(r)).Acquire(r.Context())
	} else {
		tok, err = c.Limiter.Acquire(r.Context())
	}
	if err != nil {
		return false // the client went away while queued: nobody to answer
	}
	if !tok.Allowed() {
		w.Header().Set("Retry-After", retryAfter(c.RetryAfter))
		if c.DenyHandler != nil {
			c.DenyHandler(w, r, tok.Reason())
			return false
		}
		WriteProblem(w, r, &Decision{Status: http.StatusServiceUnavailable})
		return false
	}
	outcome := concurrency.Dropped // if next panics
	defer func() { tok.Release(outcome) }()
	status := next()
	if status == 0 {
		status = http.StatusOK
	}
	classify := c.Classify
	if classify == nil {
		classify = ClassifyStatus
	}
	outcome = classify(status, r)
	return true
}

// retryAfter is the Retry-After value of d rounded up to whole seconds, "1" for zero.
func retryAfter(d time.Duration) string {
	if d <= 0 {
		return "1"
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
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
