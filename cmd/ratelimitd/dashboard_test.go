package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

const dashboardToken = "dashboard-test-token"

// TestDashboardNeedsTheToken: with a token, the page, its files and its JSON answer 401
// without it, and 200 with it as a bearer token or as a Basic password; Basic does not
// authorize writes.
func TestDashboardNeedsTheToken(t *testing.T) {
	s := start(t, nil, "-admin-token", dashboardToken)
	do := func(method, path, auth string) int {
		req, err := http.NewRequest(method, "http://"+s.admin+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		switch auth {
		case "bearer":
			req.Header.Set("Authorization", "Bearer "+dashboardToken)
		case "basic":
			req.SetBasicAuth("operator", dashboardToken)
		case "wrong":
			req.SetBasicAuth("operator", "guess")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && method == "GET" && auth == "" && !strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), " "), "Basic") {
			t.Errorf("%s %s: 401 without a Basic challenge, which a browser needs to ask for the token", method, path)
		}
		return resp.StatusCode
	}
	for _, path := range []string{"/dashboard", "/dashboard/app.js", "/dashboard/style.css", "/v1/live", "/v1/top?domain=example"} {
		for auth, want := range map[string]int{"": 401, "wrong": 401, "bearer": 200, "basic": 200} {
			if got := do("GET", path, auth); got != want {
				t.Errorf("GET %s with %q auth: %d, want %d", path, auth, got, want)
			}
		}
	}
	if got := do("POST", "/v1/reload", "basic"); got != http.StatusUnauthorized {
		t.Errorf("POST /v1/reload with Basic auth: %d, want 401 (Basic is for reads)", got)
	}
}

// TestDashboardInBrowser starts the service with the example rules, drives traffic,
// loads the dashboard in headless Chromium and checks that the page drew the rules'
// rates and the limited keys. It saves a screenshot and prints its path. Without
// Chromium it skips, except in CI (CI=true), where it fails.
func TestDashboardInBrowser(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; .ci/run installs it")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	s := start(t, nil, "-admin-token", dashboardToken)

	// Five logins a minute per address: the sixth and later are denied.
	login := func(addr string) *rlsv3.RateLimitRequest {
		return &rlsv3.RateLimitRequest{Domain: "example", Descriptors: []*rlv3.RateLimitDescriptor{
			{Entries: entries("path", "/login", "remote_address", addr)}}}
	}
	for range 9 {
		if _, err := s.client.ShouldRateLimit(context.Background(), login("192.0.2.66")); err != nil {
			t.Fatal(err)
		}
	}
	// Steady traffic while the browser runs, so that the rates are not zero; it stops
	// with the browser, or after a minute at most.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var traffic sync.WaitGroup
	traffic.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			s.client.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "example", Descriptors: []*rlv3.RateLimitDescriptor{
				{Entries: entries("remote_address", "198.51.100.7")}}})
			s.client.ShouldRateLimit(ctx, login("192.0.2.66"))
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	})
	defer func() { cancel(); traffic.Wait() }()
	waitForRates(t, s.admin)

	url := "http://operator:" + dashboardToken + "@" + s.admin + "/dashboard"
	shot := filepath.Join(os.TempDir(), "ratelimitd-dashboard.png")
	browser := func(args ...string) []byte {
		t.Helper()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--no-first-run", "--user-data-dir=" + t.TempDir(), "--window-size=1200,820",
			"--virtual-time-budget=5000"}, args...)
		bctx, bcancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer bcancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(bctx, chromium, append(args, url)...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", chromium, err, stderr.String())
		}
		return out
	}
	dom := string(browser("--dump-dom"))
	for _, want := range []string{
		`id="status">updated `,
		`data-rule="example.path_/login.remote_address"`,
		`data-rule="example.remote_address"`,
		`path=/login, remote_address=192.0.2.66`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q; it rendered:\n%s", want, dom)
		}
	}
	// The login rule's row shows a rate above zero and a denial ratio.
	row := regexp.MustCompile(`<tr data-rule="example.path_/login.remote_address">(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil || !regexp.MustCompile(`<td class="num">[0-9.]*[1-9][0-9.]*</td><td class="num bad">[0-9.]+%</td>`).MatchString(row[1]) {
		t.Errorf("the login rule's row shows no rate and denial ratio: %v", row)
	}
	browser("--screenshot=" + shot)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("dashboard screenshot: %s", shot)
}

// waitForRates waits until the dashboard's JSON shows a sample with decisions, for at
// most 10 seconds: the rates are sampled once a second.
func waitForRates(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	nonzero := regexp.MustCompile(`"calls_per_s":\[[0-9,]*[1-9]`)
	for {
		req, _ := http.NewRequest("GET", "http://"+admin+"/v1/live", nil)
		req.Header.Set("Authorization", "Bearer "+dashboardToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if nonzero.Match(body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decision sampled in 10s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
