package rulestest

import (
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

func TestLimits(t *testing.T) {
	set := Compile(t, Limits("api", "user", "5/minute", "ip", "100/second"))
	if got := set.Len(); got != 2 {
		t.Fatalf("%d rules, want 2", got)
	}
	for _, tc := range []struct {
		key    string
		rate   int
		period time.Duration
	}{{"user", 5, time.Minute}, {"ip", 100, time.Second}} {
		es := []rules.Entry{{Key: tc.key, Value: "v"}}
		r := set.Match("api", es, make([]string, 1))
		if r == nil || r.Limit.Rate != tc.rate || r.Limit.Period != tc.period {
			t.Errorf("rule of %s: got %+v, want %d per %v", tc.key, r, tc.rate, tc.period)
		}
	}
}
