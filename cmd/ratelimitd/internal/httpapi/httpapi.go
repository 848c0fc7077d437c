// Package httpapi serves the service's HTTP endpoints: POST /json (the request and
// response of envoyproxy/ratelimit's JSON endpoint), POST /v1/check (a plainer JSON API),
// GET /healthz, GET /readyz and GET /metrics.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/go-ratelimit/ratelimit/internal/sfield"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rls"
)

// MaxBody is the largest request body the decision endpoints read.
const MaxBody = 1 << 20

// Options configures the handler.
type Options struct {
	Engine *engine.Engine
	// Metrics serves GET /metrics; nil answers 404.
	Metrics http.Handler
	// Ready reports whether the service can answer: rules loaded and, unless the store's
	// failures are answered by a fail policy, the store reachable. nil means always ready.
	Ready func(context.Context) error
	// Store reports whether the store answers. GET /readyz shows it beside the readiness
	// without deciding the readiness by it; nil shows nothing. The answers of Ready and
	// Store are cached for a second, so that probes cannot load the store.
	Store func(context.Context) error
}

// Handler returns the HTTP API.
func Handler(opts *Options) http.Handler {
	h := &handler{Options: *opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /json", h.json)
	mux.HandleFunc("POST /v1/check", h.check)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", h.ready)
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	return mux
}

type handler struct {
	Options
	readiness atomic.Pointer[readiness] // the last check
}

// readiness is the outcome of a check of Ready and Store.
type readiness struct {
	at           time.Time
	ready, store error
}

// fail answers a request the handler could not decode, with status, and reports it as
// an invalid request of transport "json" (envoyproxy/ratelimit's endpoint) or "http"
// (/v1/check).
func (h *handler) fail(w http.ResponseWriter, transport string, status int, err error) {
	h.Engine.Served(transport, engine.OutcomeInvalid)
	writeError(w, status, err)
}

// json serves envoyproxy/ratelimit's endpoint: the body is a RateLimitRequest in protobuf
// JSON, the answer a RateLimitResponse, 200 when OK and 429 when over the limit.
func (h *handler) json(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, "json", bodyStatus(err), err)
		return
	}
	var req rlsv3.RateLimitRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		h.fail(w, "json", http.StatusBadRequest, fmt.Errorf("decoding the request: %w", err))
		return
	}
	resp, o, err := rls.Decide(r.Context(), h.Engine, &req)
	h.Engine.Served("json", o)
	if err != nil {
		writeError(w, statusOf(o), err)
		return
	}
	out, err := protojson.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if resp.OverallCode == rlsv3.RateLimitResponse_OVER_LIMIT {
		w.WriteHeader(http.StatusTooManyRequests)
	}
	w.Write(out)
}

// statusOf is the status of a request Decide refused with outcome o: 400 for an invalid
// request, 503 when the store could not decide.
func statusOf(o engine.Outcome) int {
	if o == engine.OutcomeInvalid {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

func (h *handler) ready(w http.ResponseWriter, r *http.Request) {
	c := h.readyState(r.Context())
	state := ""
	if h.Store != nil {
		state = "store: up"
		if c.store != nil {
			state = "store: down: " + c.store.Error()
		}
	}
	if c.ready != nil {
		writeError(w, http.StatusServiceUnavailable, c.ready)
		return
	}
	io.WriteString(w, "ready\n")
	if state != "" {
		io.WriteString(w, state+"\n")
	}
}

// readyState returns the readiness and the store's state, checked at most once a second.
func (h *handler) readyState(ctx context.Context) *readiness {
	now := time.Now()
	if c := h.readiness.Load(); c != nil && now.Sub(c.at) < time.Second {
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c := &readiness{at: now}
	if h.Ready != nil {
		c.ready = h.Ready(ctx)
	}
	if h.Store != nil {
		c.store = h.Store(ctx)
	}
	h.readiness.Store(c)
	return c
}

// readBody reads r's body, at most MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return body, nil
}

// bodyStatus is the status of a request whose body could not be used: 413 when it was
// too large, else 400.
func bodyStatus(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorBody{err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// retryAfter returns the Retry-After value for a denied decision: the longest wait of
// the statuses over their limit, in whole seconds rounded up.
func retryAfter(resp *engine.Response) string {
	var d time.Duration
	for _, st := range resp.Statuses {
		if st.Code == engine.OverLimit {
			d = max(d, st.ResetAfter)
		}
	}
	return strconv.FormatInt(sfield.CeilSeconds(d), 10)
}

var (
	errNoBody   = errors.New("the body is empty")
	errTrailing = errors.New("the body holds more than one JSON value")
)
