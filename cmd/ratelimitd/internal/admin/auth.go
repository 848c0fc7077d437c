package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// logEvery is the shortest time between two log lines of one kind of refused request (a
// wrong token, a request from a browser on another site): a guessing run writes one line
// per interval, with the count of the refusals not logged.
const logEvery = 10 * time.Second

// guard refuses, in this order: without a token, a request whose Host is not a loopback
// name or address (a DNS-rebound request from a browser); a write from a browser on
// another origin; and, with a token, a request without it.
func (a *api) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.Token == "" && !loopbackHost(r.Host) {
			a.refused(r, "host is not loopback")
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q: without a token the admin API answers only requests to localhost or a loopback address", r.Host))
			return
		}
		if err := cop.Check(r); err != nil {
			a.refused(r, "cross-origin")
			writeError(w, http.StatusForbidden, errors.New("a write from another origin is refused"))
			return
		}
		if a.opts.Token != "" && !a.authenticated(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refused logs a refused request, sampled.
func (a *api) refused(r *http.Request, why string) {
	if log, skipped := a.refusals.Sample(time.Now()); log {
		a.opts.Logger.Warn("admin: request refused", "why", why, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "unlogged", skipped)
	}
}

// loopbackHost reports whether host (a Host header, with or without a port) is
// "localhost" or a loopback IP address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticated reports whether r carries the token, answering 401 when it does not:
// as a bearer token, or, on a read (GET, HEAD), as the password of HTTP Basic
// authentication, so that a browser can open the dashboard page and the page can read
// its JSON with the credentials the browser keeps. Both sides are hashed first so that
// the comparison takes the same time whatever the length of the token sent.
func (a *api) authenticated(w http.ResponseWriter, r *http.Request) bool {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if _, password, basic := r.BasicAuth(); basic && read {
		scheme, token, ok = "Bearer", password, true
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ratelimitd admin"`)
		if read {
			w.Header().Add("WWW-Authenticate", `Basic realm="ratelimitd admin", charset="UTF-8"`)
		}
		writeError(w, http.StatusUnauthorized, errors.New("a bearer token is required: Authorization: Bearer <token>"))
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
		if log, skipped := a.wrongTokens.Sample(time.Now()); log {
			a.opts.Logger.Warn("admin: wrong token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "unlogged", skipped)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ratelimitd admin", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, errors.New("wrong token"))
		return false
	}
	return true
}
