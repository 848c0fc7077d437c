package ratelimit

import (
	"strings"
	"testing"
)

func TestParseFailPolicy(t *testing.T) {
	for _, p := range []FailPolicy{FailLocal, FailOpen, FailClosed, FailError} {
		got, err := ParseFailPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseFailPolicy(%q) = %v, %v; want %v, nil", p.String(), got, err, p)
		}
	}
	if FailPolicy(0) != FailLocal {
		t.Errorf("zero FailPolicy = %v, want local", FailPolicy(0))
	}
	for _, s := range []string{"", "Local", "fail_open", "closed ", "deny"} {
		if p, err := ParseFailPolicy(s); err == nil || !strings.Contains(err.Error(), "want local, open, closed or error") {
			t.Errorf("ParseFailPolicy(%q) = %v, %v; want an error listing the words", s, p, err)
		}
	}
	if s := FailPolicy(9).String(); s != "FailPolicy(9)" {
		t.Errorf("FailPolicy(9).String() = %q", s)
	}
}
