package main

import (
	"bytes"
	"context"
	"testing"
)

func TestRunOnLoopback(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-rate", "10/minute", "-key-rate", "2/minute", "-calls", "3"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	want := `call 1: OK  ratelimit: "per-key";r=1;t=30
call 2: OK  ratelimit: "per-key";r=0;t=60
call 3: ResourceExhausted  retry in 30s  ratelimit: "per-key";r=0;t=30
`
	if got := stdout.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestRunRejectsBadRate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-rate", "fast"}, &stdout, &stderr); err == nil {
		t.Error("run with -rate fast: nil error, want one")
	}
}
