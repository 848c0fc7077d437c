package main

import (
	"path/filepath"
	"strings"
	"testing"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/go-ratelimit/ratelimit/internal/pgtest"
)

// TestSQLStores runs the service on a SQLite file and on PostgreSQL: two services on one
// store share the limit, a request of several descriptors is all-or-nothing, and the state
// outlives the services.
func TestSQLStores(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), redisRules)
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "limits.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Start(t, nil).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			a := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "5s")
			b := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "5s")
			free := &rlv3.RateLimitDescriptor{Entries: entries("plan", "free")}
			user := &rlv3.RateLimitDescriptor{Entries: entries("user", "ivy")}
			for i, s := range []*service{a, b, a, b} {
				resp := s.should(t, "api", user, free)
				if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 2; got != want {
					t.Fatalf("call %d: %v, want OK %v (2 per hour across both services)", i+1, resp.OverallCode, want)
				}
				if got, want := resp.Statuses[0].LimitRemaining, uint32(100-min(i+1, 2)); got != want {
					t.Fatalf("call %d: per-user remaining %d, want %d (denied calls take nothing)", i+1, got, want)
				}
			}
			for i := range 6 {
				resp := b.should(t, "api", &rlv3.RateLimitDescriptor{Entries: entries("gcra", "k")})
				if got, want := resp.OverallCode == rlsv3.RateLimitResponse_OK, i < 5; got != want {
					t.Fatalf("gcra call %d: %v, want OK %v", i+1, resp.OverallCode, want)
				}
			}
			code, body := get(t, "http://"+a.http+"/readyz")
			if code != 200 {
				t.Errorf("/readyz: %d %s", code, body)
			}
			// A new service on the same store sees the state.
			c := start(t, nil, "-config", dir, "-store", url, "-fail", "error", "-store-timeout", "5s")
			if resp := c.should(t, "api", free); resp.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT {
				t.Errorf("a third service: %v, want OVER_LIMIT from the shared state", resp.OverallCode)
			}
		})
	}
}

func TestSQLStoreURLs(t *testing.T) {
	for url, want := range map[string]string{
		"sqlite://":                  "want sqlite:///path/to/file.db",
		"sqlite:///tmp/x.db?mode=ro": "without query",
		"postgres://u:secret@127.0.0.1:1/db?sslmode=x": "sslmode",
	} {
		_, err := openStore(url, "", "error", 0, nil)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("openStore(%q) = %v, want an error with %q and no password", url, err, want)
		}
	}
}
