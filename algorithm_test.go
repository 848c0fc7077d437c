package ratelimit

import (
	"errors"
	"testing"
)

func TestParseAlgorithm(t *testing.T) {
	for a := FixedWindow; a <= GCRA; a++ {
		got, err := ParseAlgorithm(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v", a.String(), got, err, a)
		}
	}
	for in, want := range map[string]Algorithm{"Token-Bucket": TokenBucket, " GCRA ": GCRA, "sliding_window_counter": SlidingWindowCounter} {
		if got, err := ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "token", "sliding_window", "leaky bucket"} {
		if _, err := ParseAlgorithm(in); !errors.Is(err, ErrInvalidAlgorithm) {
			t.Errorf("ParseAlgorithm(%q) error = %v, want ErrInvalidAlgorithm", in, err)
		}
	}
	if got := Algorithm(9).String(); got != "Algorithm(9)" {
		t.Errorf("Algorithm(9).String() = %q", got)
	}
}

func FuzzParseAlgorithm(f *testing.F) {
	f.Add("gcra")
	f.Add("Fixed-Window")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAlgorithm(s)
		if err == nil && !a.Valid() {
			t.Fatalf("ParseAlgorithm(%q) = %v, nil; want a valid algorithm", s, a)
		}
	})
}
