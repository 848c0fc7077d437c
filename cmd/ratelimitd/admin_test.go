package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// unlimitedUser is a rule file an attacker would like to load: every user unlimited.
const unlimitedUser = "domain: api\ndescriptors:\n  - key: user\n    rate_limit: {unlimited: true}\n"

// TestAdminRefusesBrowserAttacks: without a token, a DNS-rebound request (a Host other
// than loopback), a cross-origin write and a write in a type a browser form can send all
// leave the rules as they were; the same change in JSON or YAML from the listener's own
// origin is applied.
func TestAdminRefusesBrowserAttacks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "api.yaml"), perUser)
	s := start(t, nil, "-config", dir)
	user := &rlv3.RateLimitDescriptor{Entries: entries("user", "mallory")}
	limited := func() bool {
		return s.should(t, "api", user).Statuses[0].CurrentLimit.GetRequestsPerUnit() == 3
	}
	for _, tc := range []struct {
		name        string
		host        string
		header      map[string]string
		contentType string
		want        int
	}{
		{"DNS rebinding", "rebind.attacker.example:6070", nil, "application/yaml", http.StatusForbidden},
		{"cross-origin text/plain", "", map[string]string{"Origin": "http://attacker.example"}, "text/plain", http.StatusForbidden},
		{"cross-site fetch", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, "application/yaml", http.StatusForbidden},
		{"form type", "", nil, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"no type", "", nil, "", http.StatusUnsupportedMediaType},
	} {
		req, err := http.NewRequest("PUT", "http://"+s.admin+"/v1/rules/api", strings.NewReader(unlimitedUser))
		if err != nil {
			t.Fatal(err)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if !limited() {
			t.Fatalf("%s: the rules changed: user is no longer limited", tc.name)
		}
	}
	// The listener's own origin, in YAML: applied.
	req, _ := http.NewRequest("PUT", "http://"+s.admin+"/v1/rules/api", strings.NewReader(unlimitedUser))
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Origin", "http://"+s.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || limited() {
		t.Errorf("PUT in YAML from the listener's origin: %d, limited %v; want 200 and unlimited", resp.StatusCode, limited())
	}
	if got := s.should(t, "api", user).OverallCode; got != rlsv3.RateLimitResponse_OK {
		t.Errorf("after the change: %v, want OK", got)
	}
}

// TestAdminWrongTokensSampled: a guessing run of 2,000 wrong tokens writes a line for the
// first and then at most one per 10 seconds, not one per try.
func TestAdminWrongTokensSampled(t *testing.T) {
	const tries = 2000
	s := start(t, map[string]string{"RATELIMITD_ADMIN_TOKEN": "s3cret"})
	began := time.Now()
	for i := range tries {
		req, _ := http.NewRequest("GET", "http://"+s.admin+"/v1/rules", nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("try %d: %d, want 401", i, resp.StatusCode)
		}
	}
	lines, _ := s.stderr.count("wrong token")
	if most := 1 + int(time.Since(began)/(10*time.Second)); lines < 1 || lines > most {
		t.Errorf("%d wrong tokens in %v logged %d lines, want 1 to %d", tries, time.Since(began).Round(time.Millisecond), lines, most)
	}
}
