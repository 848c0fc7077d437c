package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServes(t *testing.T) {
	for _, mode := range []string{"bare", "bare-headers", "middleware", "middleware-legacy", "middleware-noheaders"} {
		ctx, cancel := context.WithCancel(t.Context())
		r, w := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"-mode", mode, "-addr", "127.0.0.1:0"}, w); w.Close() }()
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, r)
		url := strings.Fields(line)[2] + "/hello"
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		limited := resp.Header.Get("RateLimit") != "" || resp.Header.Get("X-RateLimit-Limit") != ""
		if resp.StatusCode != 200 || limited != (mode != "bare" && mode != "middleware-noheaders") {
			t.Errorf("%s: %d %v", mode, resp.StatusCode, resp.Header)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
}
