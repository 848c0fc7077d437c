package admin

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

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
	if !ruleFileType(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send the rule file as application/json or application/yaml", r.Header.Get("Content-Type")))
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
	a.mu.Lock()
	defer a.mu.Unlock()
	var (
		existed bool
		set     *rules.Set
	)
	err = a.e.UpdateRules(func(s *rules.Set) (*rules.Set, error) {
		_, existed = s.Domain(name)
		var err error
		set, err = s.WithDomain(f, Source)
		return set, err
	})
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	d, _ := set.Domain(name)
	a.opts.Logger.Info("admin: rules set", "domain", name, "rules", len(d.Rules), "replaced", existed, "remote", r.RemoteAddr)
	a.changed(set)
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, domainOf(d))
}

// ruleFileType reports whether a Content-Type is one a rule file may be sent as: JSON or
// YAML, never a type an HTML form can send.
func ruleFileType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		return true
	}
	return false
}

func (a *api) deleteRules(w http.ResponseWriter, r *http.Request) {
	name, ok := pathDomain(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var (
		source string
		set    *rules.Set
	)
	err := a.e.UpdateRules(func(s *rules.Set) (*rules.Set, error) {
		d, ok := s.Domain(name)
		if !ok {
			return nil, errNoDomain
		}
		source = d.Source
		set, _ = s.WithoutDomain(name)
		return set, nil
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
	a.changed(set)
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
