package ratelimit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Limit
	}{
		{"10/s", Limit{Rate: 10, Period: time.Second}},
		{"10/second", Limit{Rate: 10, Period: time.Second}},
		{"10/SECONDS", Limit{Rate: 10, Period: time.Second}},
		{"100/minute", Limit{Rate: 100, Period: time.Minute}},
		{"100/m", Limit{Rate: 100, Period: time.Minute}},
		{"100/min", Limit{Rate: 100, Period: time.Minute}},
		{"5/30s", Limit{Rate: 5, Period: 30 * time.Second}},
		{"5/30 seconds", Limit{Rate: 5, Period: 30 * time.Second}},
		{"1000 per hour", Limit{Rate: 1000, Period: time.Hour}},
		{"1000 PER Hours", Limit{Rate: 1000, Period: time.Hour}},
		{"3/d", Limit{Rate: 3, Period: 24 * time.Hour}},
		{"3/2days", Limit{Rate: 3, Period: 48 * time.Hour}},
		{"50/1h30m", Limit{Rate: 50, Period: 90 * time.Minute}},
		{"1/250ms", Limit{Rate: 1, Period: 250 * time.Millisecond}},
		{" 10 / s ", Limit{Rate: 10, Period: time.Second}},
		{"10/s burst 20", Limit{Rate: 10, Period: time.Second, Burst: 20}},
		{"10 per minute burst 1", Limit{Rate: 10, Period: time.Minute, Burst: 1}},
		{"1000000000/365d", Limit{Rate: 1_000_000_000, Period: 365 * 24 * time.Hour}},
	} {
		got, err := ParseLimit(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseLimitRejects(t *testing.T) {
	for _, in := range []string{
		"", "10", "/s", "10/", "0/s", "-1/s", "+1/s", "1.5/s", "10/fortnight", "10/0s", "10/-1s",
		"10/s burst", "10/s burst -1", "10/s burst x", "10 per", "ten/s",
		"99999999999999999999/s",  // rate overflows int
		"1/9999999999999999999h",  // period overflows
		"1/200000d",               // period beyond the fill bound
		"1/365d burst 1000000000", // refilling the burst takes 10^9 years
	} {
		if l, err := ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) = %+v, nil; want an error", in, l)
		} else if !strings.HasPrefix(err.Error(), "ratelimit: parse limit") {
			t.Errorf("ParseLimit(%q) error %q lacks the package prefix", in, err)
		} else if n := strings.Count(err.Error(), "ratelimit: "); n != 1 {
			t.Errorf("ParseLimit(%q) error %q names the package %d times, want once", in, err, n)
		}
	}
	for in, want := range map[string]string{
		"0/s":          `ratelimit: parse limit "0/s": invalid limit: rate 0 must be positive`,
		"0 per minute": `ratelimit: parse limit "0 per minute": invalid limit: rate 0 must be positive`,
		"10/fortnight": `ratelimit: parse limit "10/fortnight": period: "fortnight" is neither a unit nor a duration`,
		"10/s burst x": `ratelimit: parse limit "10/s burst x": burst: "x" is not a whole number`,
	} {
		_, err := ParseLimit(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseLimit(%q) error = %v, want %s", in, err, want)
		}
	}
	if _, err := ParseLimit("0/s"); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("ParseLimit(0/s) error = %v, want ErrInvalidLimit", err)
	}
}

func TestLimitStringRoundTrips(t *testing.T) {
	for _, l := range []Limit{
		PerSecond(10), PerMinute(100), PerHour(1000), {Rate: 5, Period: 24 * time.Hour},
		{Rate: 5, Period: 30 * time.Second}, {Rate: 50, Period: 90 * time.Minute, Burst: 3},
		{Rate: 7, Period: 1500 * time.Microsecond}, {Rate: 1, Period: 1},
	} {
		s := l.String()
		got, err := ParseLimit(s)
		if err != nil || got != l {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v (the limit it came from)", s, got, err, l)
		}
	}
	if got := (Limit{Rate: 10, Period: time.Second, Burst: 20}).String(); got != "10/s burst 20" {
		t.Errorf("String() = %q, want %q", got, "10/s burst 20")
	}
}

func TestValidate(t *testing.T) {
	for _, l := range []Limit{{}, {Rate: 1}, {Period: time.Second}, {Rate: -1, Period: time.Second},
		{Rate: 1, Period: time.Second, Burst: -1}, {Rate: 1, Period: 200 * 365 * 24 * time.Hour}} {
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidLimit", l, err)
		}
	}
	if err := (Limit{Rate: 1_000_000_000, Period: 365 * 24 * time.Hour}).Validate(); err != nil {
		t.Errorf("10^9 per 365 days: Validate() = %v, want nil", err)
	}
}

func TestCapacity(t *testing.T) {
	l := Limit{Rate: 10, Period: time.Second, Burst: 3}
	for alg, want := range map[Algorithm]int{FixedWindow: 10, SlidingWindowLog: 10, SlidingWindowCounter: 10,
		TokenBucket: 3, LeakyBucket: 3, GCRA: 3} {
		if got := l.Capacity(alg); got != want {
			t.Errorf("Capacity(%v) = %d, want %d", alg, got, want)
		}
	}
	if got := PerSecond(10).Capacity(GCRA); got != 10 {
		t.Errorf("Burst 0: Capacity(GCRA) = %d, want Rate 10", got)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"10/s", "1000 per hour", "5/30s burst 2", "50/1h30m", "1/0s", "x per y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) = %+v, which does not validate: %v", s, l, err)
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLimit(%q) = %+v; its String %q parses to %+v, %v", s, l, l.String(), back, err)
		}
	})
}
