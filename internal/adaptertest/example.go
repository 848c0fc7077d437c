package adaptertest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// RunFunc is the run function of an example server (examples/http, or an adapter's): it parses args, serves
// until ctx is done, and writes "listening on ADDR" as its first line to stdout.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// RunExample checks an example server, net/http's or an adapter's: its per-IP and login limits, health
// checks that are never limited, a clean shutdown, and the rejection of bad flags.
func RunExample(t *testing.T, run RunFunc) {
	t.Run("Server", func(t *testing.T) { exampleServer(t, run) })
	t.Run("RejectsBadFlags", func(t *testing.T) {
		for _, args := range [][]string{{"-limit", "lots"}, {"-login-limit", "0/s"}, {"-addr", "256.0.0.1:0"}, {"-nope"}} {
			if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
				t.Errorf("run(%q) = nil, want an error", args)
			}
		}
	})
}

func exampleServer(t *testing.T, run RunFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	stdoutR, stdoutW := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-limit", "5/minute", "-login-limit", "1/hour"}, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	go io.Copy(io.Discard, stdoutR)
	base := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	send := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// The login limit: one an hour. The denied second login takes nothing from "ip".
	if resp, body := send("POST", "/login"); resp.StatusCode != 200 || body != "welcome\n" {
		t.Errorf("first login: %d %q", resp.StatusCode, body)
	}
	resp, body := send("POST", "/login")
	var problem struct {
		Violated []string `json:"violated-policies"`
	}
	json.Unmarshal([]byte(body), &problem)
	if resp.StatusCode != 429 || len(problem.Violated) != 1 || problem.Violated[0] != "login" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second login: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// The per-IP limit: 5 a minute, one used by the first login.
	for i := range 4 {
		if resp, _ := send("GET", "/hello"); resp.StatusCode != 200 || resp.Header.Get("RateLimit") == "" {
			t.Errorf("hello %d: %d %v", i+1, resp.StatusCode, resp.Header)
		}
	}
	if resp, _ := send("GET", "/hello"); resp.StatusCode != 429 || resp.Header.Get("RateLimit") != `"ip";r=0;t=12` || resp.Header.Get("Retry-After") != "12" {
		t.Errorf("hello 5: %d RateLimit %q Retry-After %q", resp.StatusCode, resp.Header.Get("RateLimit"), resp.Header.Get("Retry-After"))
	}
	// Health checks are never limited, and carry no rate-limit headers.
	for i := range 3 {
		if resp, body := send("GET", "/healthz"); resp.StatusCode != 200 || body != "ok\n" || resp.Header.Get("RateLimit") != "" {
			t.Errorf("healthz %d: %d %q %v", i+1, resp.StatusCode, body, resp.Header)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
}
