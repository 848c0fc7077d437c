package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

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
