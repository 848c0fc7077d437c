package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
)

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
