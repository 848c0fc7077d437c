package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// checkRequest is the body of POST /v1/check:
//
//	{"domain": "api", "hits": 1,
//	 "descriptors": [{"entries": [{"key": "user", "value": "alice"}], "hits": 2}]}
//
// hits is optional at both levels: a request's defaults to 1, a descriptor's to the
// request's; a descriptor's "hits": 0 checks without taking.
type checkRequest struct {
	Domain      string            `json:"domain"`
	Hits        uint64            `json:"hits"`
	Descriptors []checkDescriptor `json:"descriptors"`
}

type checkDescriptor struct {
	Entries []rules.Entry `json:"entries"`
	Hits    *uint64       `json:"hits"`
}

// checkResponse is the answer of POST /v1/check, 200 whether allowed or not.
type checkResponse struct {
	Allowed bool `json:"allowed"`
	// UnknownDomain is true when no loaded rule names the domain.
	UnknownDomain bool              `json:"unknown_domain,omitempty"`
	Statuses      []checkStatus     `json:"statuses"`
	Headers       map[string]string `json:"headers,omitempty"`
}

type checkStatus struct {
	Allowed bool `json:"allowed"`
	// Rule is null when no rule applies to the descriptor: none matched, or the rule is
	// unlimited or replaced by another.
	Rule *checkRule `json:"rule"`
	// Matched is false when no rule of the domain matched the descriptor's entries (it is
	// then allowed, as envoyproxy/ratelimit allows it).
	Matched   bool   `json:"matched"`
	Remaining uint32 `json:"remaining"`
	// ResetAfterMS is, when allowed, the time until full capacity; when denied, the time
	// until the same hits can pass. Milliseconds, rounded up.
	ResetAfterMS int64 `json:"reset_after_ms"`
	Shadow       bool  `json:"shadow,omitempty"`
}

type checkRule struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Limit     string `json:"limit"`
	Algorithm string `json:"algorithm"`
}

func (h *handler) check(w http.ResponseWriter, r *http.Request) {
	req, err := decodeCheck(w, r)
	if err != nil {
		h.fail(w, "http", bodyStatus(err), err)
		return
	}
	resp, err := h.Engine.Decide(r.Context(), &req)
	if err != nil {
		o := engine.ErrorOutcome(err)
		h.Engine.Served("http", o)
		writeError(w, statusOf(o), err)
		return
	}
	h.Engine.Served("http", resp.Outcome())
	out := checkResponse{Allowed: resp.Code == engine.OK, UnknownDomain: resp.UnknownDomain, Statuses: make([]checkStatus, len(resp.Statuses))}
	for i := range resp.Statuses {
		st := &resp.Statuses[i]
		cs := checkStatus{
			Allowed: st.Code == engine.OK, Matched: !st.Unmatched, Remaining: st.Remaining, Shadow: st.Shadow,
			ResetAfterMS: (st.ResetAfter.Nanoseconds() + 999_999) / 1_000_000,
		}
		if rl := st.Rule; rl != nil {
			cs.Rule = &checkRule{ID: rl.ID, Name: rl.Name, Limit: limitText(rl), Algorithm: rl.Algorithm.String()}
		}
		out.Statuses[i] = cs
	}
	if len(resp.Headers) > 0 {
		out.Headers = make(map[string]string, len(resp.Headers))
		for _, hd := range resp.Headers {
			out.Headers[hd.Name] = hd.Value
		}
	}
	if !out.Allowed {
		w.Header().Set("Retry-After", retryAfter(resp))
	}
	writeJSON(w, http.StatusOK, out)
}

func limitText(r *rules.Rule) string {
	if r.Limit.Rate == 0 {
		return "0/" + r.Limit.Period.String()
	}
	return r.Limit.String()
}

// decodeCheck decodes the body of POST /v1/check into the engine's request as it is: the
// engine validates it. The body is bounded by MaxBody, so converting it before the caps
// are checked costs at most what decoding it did.
func decodeCheck(w http.ResponseWriter, r *http.Request) (engine.Request, error) {
	body, err := readBody(w, r)
	if err != nil {
		return engine.Request{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return engine.Request{}, errNoBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var cr checkRequest
	if err := dec.Decode(&cr); err != nil {
		return engine.Request{}, fmt.Errorf("decoding the request: %w", err)
	}
	if dec.More() {
		return engine.Request{}, errTrailing
	}
	req := engine.Request{Domain: cr.Domain, Hits: cr.Hits, Descriptors: make([]engine.Descriptor, len(cr.Descriptors))}
	for i, d := range cr.Descriptors {
		req.Descriptors[i].Entries = d.Entries
		if d.Hits != nil {
			req.Descriptors[i].Hits, req.Descriptors[i].HasHits = *d.Hits, true
		}
	}
	return req, nil
}
