package admin

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

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
	// Remaining is the number of units left; 0 when no rule applies, 4294967295 for an
	// unlimited rule.
	Remaining uint32 `json:"remaining"`
	// ResetAfterMS is the time, in milliseconds, until the rule is back to full capacity
	// (until the window ends for a fixed window), over the limit or not: the key is
	// checked for no units, so the time until one unit can pass is not known.
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
