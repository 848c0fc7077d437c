package httplimit_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestFromEnv(t *testing.T) {
	store := newStore(t)
	mw, err := httplimit.FromEnv(env(map[string]string{
		"RATELIMIT_DEFAULT":         "100/minute",
		"RATELIMIT_ROUTES":          "api, login",
		"RATELIMIT_ROUTE_API":       "GET /api/ 10/s burst 20",
		"RATELIMIT_ROUTE_LOGIN":     "POST /login 1 per hour",
		"RATELIMIT_EXCLUDE":         "/healthz, GET /static/",
		"RATELIMIT_ALGORITHM":       "token_bucket",
		"RATELIMIT_TRUSTED_PROXIES": "10.0.0.0/8 192.0.2.7",
		"RATELIMIT_PROXY_HEADER":    "X-Real-IP",
		"RATELIMIT_IPV6_PREFIX":     "56",
		"RATELIMIT_HEADERS":         "both",
		"RATELIMIT_FAIL":            "closed",
	}), store)
	if err != nil {
		t.Fatal(err)
	}
	if mw.Limiter.Limit() != ratelimit.PerMinute(100) || mw.Limiter.Algorithm() != ratelimit.TokenBucket {
		t.Errorf("default limiter: %v %v", mw.Limiter.Limit(), mw.Limiter.Algorithm())
	}
	if mw.Headers != httplimit.HeadersBoth || mw.OnStoreError != ratelimit.FailClosed || mw.ClientIP.IPv6Prefix != 56 ||
		mw.ClientIP.ProxyHeader != "X-Real-IP" || len(mw.ClientIP.TrustedProxies) != 2 ||
		mw.ClientIP.TrustedProxies[1] != netip.MustParsePrefix("192.0.2.7/32") {
		t.Errorf("middleware %+v", mw)
	}
	if len(mw.Exclude) != 2 || mw.Exclude[1] != "GET /static/" {
		t.Errorf("Exclude %q", mw.Exclude)
	}
	d, err := mw.Check(request("POST", "/login", "10.0.0.1:1", "X-Real-IP", "203.0.113.5"))
	if err != nil || !d.Allowed {
		t.Fatalf("POST /login: %+v %v", d, err)
	}
	if lim, _ := d.Limiting(); lim.Name != "login" || lim.Result.Limit.Rate != 1 {
		t.Errorf("POST /login decided by %+v", lim)
	}
	d, _ = mw.Check(request("POST", "/login", "10.0.0.1:1", "X-Real-IP", "203.0.113.5"))
	if d.Status != 429 {
		t.Errorf("second POST /login: %d", d.Status)
	}
	d, _ = mw.Check(request("GET", "/other", "10.0.0.1:1", "X-Real-IP", "203.0.113.5"))
	if lim, _ := d.Limiting(); !d.Allowed || lim.Name != "default" {
		t.Errorf("GET /other: %+v", d)
	}
	d, _ = mw.Check(request("GET", "/healthz", "10.0.0.1:1"))
	if _, ok := d.Limiting(); !d.Allowed || ok {
		t.Errorf("GET /healthz: %+v", d)
	}

	// The default alone applies to every request, with no pattern matching.
	mw, err = httplimit.FromEnv(env(map[string]string{"RATELIMIT_DEFAULT": "5/s"}), store)
	if err != nil || len(mw.Rules) != 0 || mw.Limiter.Limit() != ratelimit.PerSecond(5) || mw.Limiter.Algorithm() != ratelimit.GCRA {
		t.Errorf("default only: %+v %v", mw, err)
	}
}

func TestFromEnvErrorsNameTheVariable(t *testing.T) {
	store := newStore(t)
	tests := []struct {
		vars map[string]string
		name string // the variable the error must name
	}{
		{map[string]string{}, "RATELIMIT_DEFAULT"},
		{map[string]string{"RATELIMIT_DEFAULT": "lots"}, "RATELIMIT_DEFAULT"},
		{map[string]string{"RATELIMIT_DEFAULT": "0/s"}, "RATELIMIT_DEFAULT"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_ALGORITHM": "fast"}, "RATELIMIT_ALGORITHM"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, "RATELIMIT_TRUSTED_PROXIES"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_PROXY_HEADER": "X Forwarded"}, "RATELIMIT_PROXY_HEADER"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_IPV6_PREFIX": "200"}, "RATELIMIT_IPV6_PREFIX"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_HEADERS": "fancy"}, "RATELIMIT_HEADERS"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_FAIL": "maybe"}, "RATELIMIT_FAIL"},
		{map[string]string{"RATELIMIT_DEFAULT": "1/s", "RATELIMIT_EXCLUDE": "/ok, GET"}, "RATELIMIT_EXCLUDE"},
		{map[string]string{"RATELIMIT_ROUTES": "api"}, "RATELIMIT_ROUTE_API"},
		{map[string]string{"RATELIMIT_ROUTES": "a-b"}, "RATELIMIT_ROUTES"},
		{map[string]string{"RATELIMIT_ROUTES": "api API", "RATELIMIT_ROUTE_API": "/api/ 1/s"}, "RATELIMIT_ROUTES"},
		{map[string]string{"RATELIMIT_ROUTES": "api", "RATELIMIT_ROUTE_API": "10/s"}, "RATELIMIT_ROUTE_API"},
		{map[string]string{"RATELIMIT_ROUTES": "api", "RATELIMIT_ROUTE_API": "GET /api/"}, "RATELIMIT_ROUTE_API"},
		{map[string]string{"RATELIMIT_ROUTES": "api", "RATELIMIT_ROUTE_API": "GET /api/ often"}, "RATELIMIT_ROUTE_API"},
		{map[string]string{"RATELIMIT_ROUTES": "api", "RATELIMIT_ROUTE_API": "GET /api/{ 1/s"}, "RATELIMIT_ROUTE_API"},
		{map[string]string{"RATELIMIT_ROUTES": "a b", "RATELIMIT_ROUTE_A": "/x/{p} 1/s", "RATELIMIT_ROUTE_B": "/x/{q} 1/s"}, "RATELIMIT_ROUTES"},
	}
	for _, tt := range tests {
		_, err := httplimit.FromEnv(env(tt.vars), store)
		if err == nil || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("FromEnv(%v) = %v, want an error naming %s", tt.vars, err, tt.name)
			continue
		}
		if strings.Count(err.Error(), "httplimit: ") != 1 || strings.Count(err.Error(), "ratelimit: ") > 1 {
			t.Errorf("FromEnv(%v) = %v, want each package named once", tt.vars, err)
		}
	}
}
