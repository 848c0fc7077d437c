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
// default.
package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
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
	// reload). nil means slog.New(slog.DiscardHandler).
	Logger *slog.Logger

	// Reload reloads the rule files now and returns the error that rejected them. nil
	// answers POST /v1/reload with 501. Reload itself publishes the new rules; OnChange is
	// not called for it.
	Reload func() error

	// OnChange, when not nil, is called after each successful run-time change (PUT or
	// DELETE of a domain) with the engine's rule set after the change.
	OnChange func(*rules.Set)
}

// Handler returns the admin API over e. It is safe for concurrent use.
func Handler(e *engine.Engine, opts *Options) http.Handler {
	a := &api{e: e}
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
	return a.authenticate(mux)
}

type api struct {
	e     *engine.Engine
	opts  Options
	token [sha256.Size]byte
}

// authenticate requires the bearer token when one is set. Both sides are hashed first so
// that the comparison takes the same time whatever the length of the token sent.
func (a *api) authenticate(next http.Handler) http.Handler {
	if a.opts.Token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ratelimitd admin"`)
			writeError(w, http.StatusUnauthorized, errors.New("a bearer token is required: Authorization: Bearer <token>"))
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			a.opts.Logger.Warn("admin: wrong token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ratelimitd admin", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, errors.New("wrong token"))
			return
		}
		next.ServeHTTP(w, r)
	})
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
	}{"ratelimitd admin", endpoints})
}

// Rule is a compiled rule as the API shows it.
type Rule struct {
	// ID is the rule's place in its tree, "domain.key_value.key"; it labels its metrics.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Unit is the unit the RLS API reports ("second" … "year"), "" for a period that is
	// not one of them and for an unlimited rule.
	Unit            string `json:"unit"`
	RequestsPerUnit uint32 `json:"requests_per_unit"`
	// Period is the window in Go's duration syntax ("1s", "5m", "24h"); "" when unlimited.
	Period string `json:"period"`
	// Algorithm is "fixed_window" … "gcra"; "" when unlimited.
	Algorithm string `json:"algorithm"`
	// Burst is the capacity of token_bucket, leaky_bucket and gcra; 0 means
	// requests_per_unit.
	Burst          int      `json:"burst"`
	Unlimited      bool     `json:"unlimited"`
	ShadowMode     bool     `json:"shadow_mode"`
	DetailedMetric bool     `json:"detailed_metric"`
	Replaces       []string `json:"replaces"`
}

// Domain is a loaded domain as the API shows it.
type Domain struct {
	Name string `json:"name"`
	// Source is the rule file the domain came from, or "admin".
	Source string `json:"source"`
	Rules  []Rule `json:"rules"`
}

func ruleOf(r *rules.Rule) Rule {
	v := Rule{
		ID: r.ID, Name: r.Name, RequestsPerUnit: r.RequestsPerUnit, Burst: r.Limit.Burst,
		Unlimited: r.Unlimited, ShadowMode: r.Shadow, DetailedMetric: r.Detailed,
		Replaces: r.Replaces,
	}
	if v.Replaces == nil {
		v.Replaces = []string{}
	}
	if !r.Unlimited {
		if _, ok := rules.UnitDuration(r.Unit); ok {
			v.Unit = strings.ToLower(r.Unit.String())
		}
		v.Period = formatDuration(r.Limit.Period)
		v.Algorithm = r.Algorithm.String()
	}
	return v
}

func domainOf(d rules.Domain) Domain {
	v := Domain{Name: d.Name, Source: d.Source, Rules: make([]Rule, len(d.Rules))}
	for i, r := range d.Rules {
		v.Rules[i] = ruleOf(r)
	}
	return v
}

// formatDuration writes d as the rule files do: "5m", not "5m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (a *api) listRules(w http.ResponseWriter, _ *http.Request) {
	doms := a.e.Rules().Domains()
	out := make([]Domain, len(doms))
	for i, d := range doms {
		out[i] = domainOf(d)
	}
	writeJSON(w, http.StatusOK, struct {
		Domains []Domain `json:"domains"`
	}{out})
}

// pathDomain returns the {domain} of the path, answering 400 when it is empty.
func pathDomain(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("domain")
	if name == "" {
		writeError(w, http.StatusBadRequest, errors.New("missing domain: use /v1/rules/{domain}"))
		return "", false
	}
	return name, true
}

func (a *api) getRules(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r)
	if !ok {
		return
	}
	d, ok := a.e.Rules().Domain(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no domain %q", name))
		return
	}
	writeJSON(w, http.StatusOK, d.File)
}

// errNoDomain is the answer to a change of a domain that is not loaded.
var errNoDomain = errors.New("no such domain")

func (a *api) putRules(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeBodyError(w, err)
		return
	}
	f, err := rules.Parse(rules.Source{Name: Source, Data: body})
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	switch f.Domain {
	case "":
		f.Domain = name
	case name:
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s: the file's domain %q is not the path's %q", Source, f.Domain, name))
		return
	}
	var existed bool
	err = a.e.UpdateRules(func(s *rules.Set) (*rules.Set, error) {
		_, existed = s.Domain(name)
		return s.WithDomain(f, Source)
	})
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	set := a.e.Rules()
	d, ok := set.Domain(name)
	if !ok { // removed again meanwhile
		writeError(w, http.StatusConflict, fmt.Errorf("domain %q was removed while being set", name))
		return
	}
	a.opts.Logger.Info("admin: rules set", "domain", name, "rules", len(d.Rules), "replaced", existed, "remote", r.RemoteAddr)
	a.changed(set)
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, domainOf(d))
}

func (a *api) deleteRules(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r)
	if !ok {
		return
	}
	var source string
	err := a.e.UpdateRules(func(s *rules.Set) (*rules.Set, error) {
		d, ok := s.Domain(name)
		if !ok {
			return nil, errNoDomain
		}
		source = d.Source
		n, _ := s.WithoutDomain(name)
		return n, nil
	})
	if errors.Is(err, errNoDomain) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no domain %q", name))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("removing %q: %w", name, err))
		return
	}
	a.opts.Logger.Info("admin: rules removed", "domain", name, "source", source, "remote", r.RemoteAddr)
	a.changed(a.e.Rules())
	writeJSON(w, http.StatusOK, struct {
		Domain  string `json:"domain"`
		Deleted bool   `json:"deleted"`
	}{name, true})
}

func (a *api) changed(s *rules.Set) {
	if a.opts.OnChange != nil {
		a.opts.OnChange(s)
	}
}

// descriptor reads the domain and entries of a /v1/keys query.
func descriptor(r *http.Request) (string, []rules.Entry, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", nil, fmt.Errorf("malformed query: %w", err)
	}
	domain := q.Get("domain")
	if domain == "" {
		return "", nil, errors.New("missing domain: add domain=<domain> to the query")
	}
	raw := q["entry"]
	if len(raw) == 0 {
		return "", nil, errors.New("missing entries: add entry=<key>=<value> to the query, once per entry, in order")
	}
	if len(raw) > engine.MaxEntries {
		return "", nil, fmt.Errorf("%d entries, at most %d are allowed", len(raw), engine.MaxEntries)
	}
	entries := make([]rules.Entry, len(raw))
	for i, s := range raw {
		k, v, ok := strings.Cut(s, "=")
		switch {
		case !ok:
			return "", nil, fmt.Errorf("entry %d %q: want key=value", i+1, s)
		case k == "":
			return "", nil, fmt.Errorf("entry %d %q: empty key", i+1, s)
		}
		entries[i] = rules.Entry{Key: k, Value: v}
	}
	return domain, entries, nil
}

// entryStrings returns entries as "key=value" strings, for logs.
func entryStrings(entries []rules.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Key + "=" + e.Value
	}
	return out
}

// KeyState is the answer of GET /v1/keys.
type KeyState struct {
	Domain  string        `json:"domain"`
	Entries []rules.Entry `json:"entries"`
	// Rule is the rule the descriptor matches; null when none applies or the rule is
	// unlimited.
	Rule *Rule `json:"rule"`
	// Unlimited reports a match of an unlimited rule.
	Unlimited bool `json:"unlimited"`
	// Remaining is the number of units left; 0 when no rule applies.
	Remaining uint32 `json:"remaining"`
	// ResetAfterMS is the time, in milliseconds, until the rule is back to full capacity
	// (until the window ends for a fixed window); when over the limit, until one unit can
	// pass.
	ResetAfterMS int64 `json:"reset_after_ms"`
	// OverLimit reports that a hit of one unit would be over the limit now.
	OverLimit bool `json:"over_limit"`
}

func (a *api) inspect(w http.ResponseWriter, r *http.Request) {
	domain, entries, err := descriptor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	st, err := a.e.Inspect(r.Context(), domain, entries)
	if err != nil {
		writeEngineError(w, fmt.Errorf("inspect: %w", err))
		return
	}
	out := KeyState{Domain: domain, Entries: entries, Remaining: st.Remaining, ResetAfterMS: st.ResetAfter.Milliseconds()}
	switch {
	case st.Rule != nil:
		rv := ruleOf(st.Rule)
		out.Rule = &rv
		out.OverLimit = st.Code == engine.OverLimit || st.Shadow || st.Remaining == 0
	case st.Remaining == math.MaxUint32:
		out.Unlimited = true
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) reset(w http.ResponseWriter, r *http.Request) {
	domain, entries, err := descriptor(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	ok, err := a.e.Reset(r.Context(), domain, entries)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	a.opts.Logger.Info("admin: key reset", "domain", domain, "entries", entryStrings(entries), "reset", ok, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, struct {
		Domain  string        `json:"domain"`
		Entries []rules.Entry `json:"entries"`
		Reset   bool          `json:"reset"`
	}{domain, entries, ok})
}

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, errors.New("reload is not available: the service runs on built-in rules, not rule files"))
		return
	}
	if err := a.opts.Reload(); err != nil {
		a.opts.Logger.Warn("admin: reload rejected", "err", err, "remote", r.RemoteAddr)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			writeError(w, http.StatusInternalServerError, fmt.Errorf("reload: %w", err))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("reload: the rule files were rejected; the previous rules keep serving: %w", err))
		return
	}
	set := a.e.Rules()
	a.opts.Logger.Info("admin: rules reloaded", "domains", len(set.Domains()), "rules", set.Len(), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, struct {
		Reloaded bool `json:"reloaded"`
		Domains  int  `json:"domains"`
		Rules    int  `json:"rules"`
	}{true, len(set.Domains()), set.Len()})
}

// errorBody is every error answer: the error's text and, when it joins several, each one.
type errorBody struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	body := errorBody{Error: err.Error()}
	if list := flatten(err); len(list) > 1 {
		for _, e := range list {
			body.Errors = append(body.Errors, e.Error())
		}
	}
	writeJSON(w, status, body)
}

// flatten returns the errors a tree of errors.Join errors joins, looking through errors
// that wrap one; []error{err} when it joins nothing.
func flatten(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, c := range e.Unwrap() {
			out = append(out, flatten(c)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			if list := flatten(inner); len(list) > 1 {
				return list
			}
		}
	}
	return []error{err}
}

// writeBodyError answers a body that could not be read: 413 when over MaxBody.
func writeBodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is larger than %d bytes", mbe.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
}

// writeEngineError answers an error of the engine: 400 for a request it refuses, 500 for
// a store that failed.
func writeEngineError(w http.ResponseWriter, err error) {
	if errors.Is(err, engine.ErrInvalidRequest) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeError(w, http.StatusInternalServerError, err)
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
