package admin

import (
	"net/http"
	"strings"
	"testing"
)

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:6070": true, "127.0.0.1": true, "127.0.0.1:6070": true,
		"127.9.9.9:1": true, "[::1]:6070": true, "::1": true, "[::1]": true,
		"": false, "rebind.attacker.example": false, "rebind.attacker.example:6070": false,
		"10.0.0.1:6070": false, "localhost.attacker.example": false, "127.0.0.1.nip.io": false,
		"[::ffff:7f00:1]:6070": true, "0.0.0.0:6070": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRuleFileType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "application/yaml": true,
		"application/x-yaml": true, "text/yaml": true, "TEXT/YAML": true, "text/x-yaml": true,
		"": false, "text/plain": false, "application/x-www-form-urlencoded": false,
		"multipart/form-data; boundary=x": false, "application/json;;": false,
	} {
		if got := ruleFileType(ct); got != want {
			t.Errorf("ruleFileType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestGuard: without a token, a Host other than loopback is refused for every method;
// with a token it is not (a token proves the caller is no rebound browser page).
// Cross-origin writes are refused either way, and each kind of refusal is logged once
// for a burst of them.
func TestGuard(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		f := newFixture(t, &Options{Token: token})
		send := func(method, path, body string, header map[string]string) int {
			t.Helper()
			req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
			for k, v := range header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		rebound := map[string]string{"Host": "rebind.attacker.example"}
		wantRebound := http.StatusForbidden
		if token != "" {
			wantRebound = http.StatusOK
		}
		for range 3 {
			if got := send("GET", "/v1/rules", "", rebound); got != wantRebound {
				t.Errorf("token %q: GET with a rebound Host: %d, want %d", token, got, wantRebound)
			}
		}
		yaml := map[string]string{"Content-Type": "application/yaml"}
		for _, h := range []map[string]string{
			{"Origin": "https://attacker.example"},
			{"Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "same-site"},
		} {
			for k, v := range yaml {
				h[k] = v
			}
			for _, m := range []string{"PUT", "DELETE"} {
				if got := send(m, "/v1/rules/api", rulesYAML, h); got != http.StatusForbidden {
					t.Errorf("token %q: %s with %v: %d, want 403", token, m, h, got)
				}
			}
			if got := send("POST", "/v1/reload", "", h); got != http.StatusForbidden {
				t.Errorf("token %q: POST /v1/reload with %v: %d, want 403", token, h, got)
			}
		}
		same := map[string]string{"Origin": f.srv.URL, "Content-Type": "application/yaml"}
		if got := send("PUT", "/v1/rules/api", rulesYAML, same); got != http.StatusOK {
			t.Errorf("token %q: PUT from the listener's own origin: %d, want 200", token, got)
		}
		if got := strings.Count(f.logged(), "admin: request refused"); got != 1 {
			t.Errorf("token %q: %d refusals logged %d lines, want 1:\n%s", token, 9, got, f.logged())
		}
	}
}
