package sfield

import (
	"math"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

func TestAppendPolicy(t *testing.T) {
	for _, tc := range []struct {
		limit ratelimit.Limit
		alg   ratelimit.Algorithm
		want  string
	}{
		{ratelimit.PerMinute(100), ratelimit.FixedWindow, `"r";q=100;w=60`},
		{ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 10}, ratelimit.GCRA, `"r";q=10;w=6`},
		{ratelimit.Limit{Rate: 100, Period: time.Minute, Burst: 10}, ratelimit.SlidingWindowLog, `"r";q=100;w=60`},
		{ratelimit.Limit{Rate: 5, Period: 500 * time.Millisecond}, ratelimit.TokenBucket, `"r";q=5;w=1`},
		{ratelimit.Limit{Rate: 1, Period: 1500 * time.Millisecond}, ratelimit.GCRA, `"r";q=1;w=2`},
	} {
		// The policy is written from a Result's effective limit, whose Burst is the capacity.
		eff := tc.limit
		eff.Burst = tc.limit.Capacity(tc.alg)
		if got := string(AppendPolicy(nil, "r", eff)); got != tc.want {
			t.Errorf("policy of %v under %v = %s, want %s", tc.limit, tc.alg, got, tc.want)
		}
	}
}

func TestAppendLimit(t *testing.T) {
	if got, want := string(AppendLimit(nil, "ip", 42, 16*time.Second+time.Nanosecond)), `"ip";r=42;t=17`; got != want {
		t.Errorf("AppendLimit = %s, want %s", got, want)
	}
	if got, want := string(AppendLimit(nil, "ip", -1, math.MaxInt64)), `"ip";r=0;t=9223372037`; got != want {
		t.Errorf("AppendLimit out of range = %s, want %s", got, want)
	}
}

func TestAppendString(t *testing.T) {
	if got, want := string(AppendString(nil, "a \"b\" \\c\x01")), `"a \"b\" \\c?"`; got != want {
		t.Errorf("AppendString = %s, want %s", got, want)
	}
}

func TestAppendIntClamps(t *testing.T) {
	for v, want := range map[int64]string{-5: "0", 7: "7", math.MaxInt64: "999999999999999"} {
		if got := string(AppendInt(nil, v)); got != want {
			t.Errorf("AppendInt(%d) = %s, want %s", v, got, want)
		}
	}
}
