package live

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

//go:embed page
var page embed.FS

// maxTop is the most keys one request may ask for.
const maxTop = 100

// Routes are the Board's endpoints on the admin listener, by mux pattern, with their
// descriptions. The admin API serves them behind its own authentication.
func (b *Board) Routes() []Route {
	return []Route{
		{"GET /dashboard", "the dashboard page", http.HandlerFunc(b.servePage)},
		{"GET /dashboard/{file}", "", http.HandlerFunc(b.servePage)},
		{"GET /v1/live", "what the dashboard shows, as JSON: rule rates, top limited keys (?n=), store health, rule set version", http.HandlerFunc(b.serveLive)},
		{"GET /v1/top", "the domain's most limited keys over the last minute: ?domain=D&n=10&by=denied|traffic", http.HandlerFunc(b.serveTop)},
	}
}

// Route is one endpoint.
type Route struct {
	Pattern     string
	Description string // empty for a route not listed in the index
	Handler     http.Handler
}

var types = map[string]string{
	"index.html": "text/html; charset=utf-8",
	"app.js":     "text/javascript; charset=utf-8",
	"style.css":  "text/css; charset=utf-8",
}

func (b *Board) servePage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	typ, ok := types[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no file %q", name)})
		return
	}
	data, err := page.ReadFile("page/" + name)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", typ)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	w.Write(data)
}

func (b *Board) serveLive(w http.ResponseWriter, r *http.Request) {
	n, err := count(r, 10)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, b.Snapshot(n))
}

func (b *Board) serveTop(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := count(r, 10)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	by := q.Get("by")
	if by != "" && by != "denied" && by != "traffic" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("by=%q: want denied or traffic", by)})
		return
	}
	domain := q.Get("domain")
	if domain == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "domain is required: /v1/top?domain=D"})
		return
	}
	keys, ok := b.Top(domain, n, by == "traffic")
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("domain %q is not loaded, or ranks no keys", domain)})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Domain string     `json:"domain"`
		By     string     `json:"by"`
		Window string     `json:"window"`
		Keys   []TopEntry `json:"keys"`
	}{domain, map[bool]string{false: "denied", true: "traffic"}[by == "traffic"], "1m0s", keys})
}

// count reads the query's n: 1 to maxTop, def when absent.
func count(r *http.Request, def int) (int, error) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxTop {
		return 0, fmt.Errorf("n=%q: want 1 to %d", s, maxTop)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
