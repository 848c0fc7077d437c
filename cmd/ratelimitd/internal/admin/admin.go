// Package admin serves the service's admin API, on a listener of its own: the loaded
// rules, run-time rule changes, the state of one key, and a reload of the rule files.
//
//	GET    /                    the endpoints, as JSON
//	GET    /v1/rules            every loaded domain, its source and its rules
//	GET    /v1/rules/{domain}   the domain's rule file, as JSON
//	PUT    /v1/rules/{domain}   sets the domain's rules from a rule file in YAML or JSON
//	DELETE /v1/rules/{domain}   removes the domain
//	GET    /v1/keys?domain=D&entry=key=value&entry=...
//	                            the rule a descriptor matches and its state, taking nothing
//	DELETE /v1/keys?domain=D&entry=key=value&entry=...
//	                            forgets the state of that descriptor's key
//	POST   /v1/reload           reloads the rule files now
//
// Every answer is JSON; an error is {"error": "..."}, with "errors" listing each
// validation error of a rejected rule file. Request bodies are limited to [MaxBody].
//
// Rules set or removed at run time replace the domain in memory only (their source is
// "admin"): they last until the rule files are next reloaded, when the files change or on
// POST /v1/reload, which brings back the files' rules for every domain.
//
// The API changes what the service enforces. With [Options.Token] unset anyone who can
// reach the listener can use it, so the service binds it to a loopback address by
// default, and the API answers only requests whose Host is localhost or a loopback
// address, so that a web page whose name an attacker rebinds to 127.0.0.1 cannot reach
// it from a browser. Writes from a browser on another origin (by Sec-Fetch-Site, else
// Origin against Host) are refused with or without a token, and a rule file must be sent
// as application/json or YAML (application/yaml, application/x-yaml, text/yaml), which
// no HTML form can send. Refused requests and wrong tokens are logged at most once per
// 10 seconds each, with the count of those not logged.
package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/logsample"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// MaxBody is the largest request body read, in bytes: 1 MiB.
const MaxBody = 1 << 20

// Source is the source of rules set through the API.
const Source = "admin"

// Options configures the admin API. A nil *Options means no token, no logging, no reload
// and no change hook.
type Options struct {
	// Token, when set, is required on every request as "Authorization: Bearer <token>",
	// compared in constant time; a request without it is answered 401 with a
	// WWW-Authenticate header. Empty means no authentication.
	Token string

	// Logger receives a line at Info for every change (rules set or removed, key reset,
	// reload), at Warn for a rejected reload, and at Warn, at most once per 10 seconds
	// each with an "unlogged" count, for wrong tokens and refused requests. nil means
	// slog.New(slog.DiscardHandler).
	Logger *slog.Logger

	// Reload reloads the rule files now and returns the error that rejected them. nil
	// answers POST /v1/reload with 501. Reload itself publishes the new rules; OnChange is
	// not called for it.
	Reload func() error

	// OnChange, when not nil, is called after each successful run-time change (PUT or
	// DELETE of a domain) with the rule set that change made, one change at a time and
	// in the order they were made.
	OnChange func(*rules.Set)

	// Extra are more endpoints, served behind the same defences and token, and listed
	// by GET / when they have a description.
	Extra []Extra
}

// Extra is an endpoint served by the admin API for another package.
type Extra struct {
	Pattern     string // an http.ServeMux pattern with a method: "GET /v1/top"
	Description string
	Handler     http.Handler
}

// Handler returns the admin API over e. It is safe for concurrent use.
func Handler(e *engine.Engine, opts *Options) http.Handler {
	a := &api{e: e}
	a.wrongTokens.Interval, a.refusals.Interval = logEvery, logEvery
	if opts != nil {
		a.opts = *opts
	}
	if a.opts.Logger == nil {
		a.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if a.opts.Token != "" {
		a.token = sha256.Sum256([]byte(a.opts.Token))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /v1/rules", a.listRules)
	mux.HandleFunc("GET /v1/rules/{domain...}", a.getRules)
	mux.HandleFunc("PUT /v1/rules/{domain...}", a.putRules)
	mux.HandleFunc("DELETE /v1/rules/{domain...}", a.deleteRules)
	mux.HandleFunc("GET /v1/keys", a.inspect)
	mux.HandleFunc("DELETE /v1/keys", a.reset)
	mux.HandleFunc("POST /v1/reload", a.reload)
	a.endpoints = endpoints
	for _, x := range a.opts.Extra {
		mux.Handle(x.Pattern, x.Handler)
		if method, path, ok := strings.Cut(x.Pattern, " "); ok && x.Description != "" {
			a.endpoints = append(a.endpoints[:len(a.endpoints):len(a.endpoints)], endpoint{method, path, x.Description})
		}
	}
	// The same paths with another method: 405 in JSON rather than the mux's plain text.
	for path, allow := range map[string]string{
		"/{$}":       "GET, HEAD",
		"/v1/rules":  "GET, HEAD",
		"/v1/rules/": "GET, HEAD, PUT, DELETE",
		"/v1/keys":   "GET, HEAD, DELETE",
		"/v1/reload": "POST",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, errors.New("method not allowed; allowed: "+allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s; GET / lists them", r.URL.Path))
	})
	return a.guard(mux)
}

type api struct {
	e     *engine.Engine
	opts  Options
	token [sha256.Size]byte
	// endpoints lists the API's endpoints and the Extra ones.
	endpoints []endpoint
	// wrongTokens and refusals sample the log lines of refused requests.
	wrongTokens, refusals logsample.Sampler
	// mu serializes run-time changes from the change to its OnChange call, so that
	// OnChange receives each change's own set, in the order they land.
	mu sync.Mutex
}

type endpoint struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Description string `json:"description"`
}

var endpoints = []endpoint{
	{"GET", "/v1/rules", "every loaded domain with its source and rules"},
	{"GET", "/v1/rules/{domain}", "the domain's rule file as JSON"},
	{"PUT", "/v1/rules/{domain}", "set the domain's rules from a rule file in YAML or JSON, until the rule files are next reloaded"},
	{"DELETE", "/v1/rules/{domain}", "remove the domain until the rule files are next reloaded"},
	{"GET", "/v1/keys?domain={domain}&entry={key}={value}&entry=...", "the rule a descriptor matches and its remaining units, taking nothing"},
	{"DELETE", "/v1/keys?domain={domain}&entry={key}={value}&entry=...", "forget the state of the descriptor's key"},
	{"POST", "/v1/reload", "reload the rule files now"},
}

func (a *api) index(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Service   string     `json:"service"`
		Endpoints []endpoint `json:"endpoints"`
	}{"ratelimitd admin", a.endpoints})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error": "encoding the answer failed"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
