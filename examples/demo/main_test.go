package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-limit", "10/s burst 5", "-rps", "40", "-duration", "2s"}, &out); err != nil {
			t.Fatal(err)
		}
		totals := map[string]int{}
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Fields(line)
			if len(f) == 10 {
				totals[f[0]], _ = strconv.Atoi(f[9])
			}
		}
		// Requests go out every 25ms from 0 to 1.975s. The exact windows allow 10 in each
		// second; the buckets 5 at once plus 10 per second of refill: 5 + ⌊19.75⌋.
		for alg, want := range map[string]int{"fixed_window": 20, "sliding_window_log": 20, "token_bucket": 24, "gcra": 24, "leaky_bucket": 24} {
			if got := totals[alg]; got != want {
				t.Errorf("%s allowed %d, want %d\n%s", alg, got, want, out.String())
			}
		}
	})
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-limit", "0/s"}, {"-rps", "0"}, {"-nope"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
