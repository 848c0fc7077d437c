package clientip

import (
	"net/netip"
	"testing"
)

func TestParseNode(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" when the node is not an address
	}{
		{" 192.0.2.1 ", "192.0.2.1"},
		{"192.0.2.1:8080", "192.0.2.1"},
		{"192.0.2.1:_gazonk", "192.0.2.1"},
		{"192.0.2.1:", ""},
		{"192.0.2.1:123456", ""},
		{"2001:db8::1:80", "2001:db8::1:80"},
		{"::1:80", "::1:80"},
		{"2001:db8::1", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1"},
		{`"[2001:db8::1]:4711"`, "2001:db8::1"},
		{`"[2001:db8::1]"`, "2001:db8::1"},
		{`"[2001:db8::1\]:4711"`, "2001:db8::1"},
		{"[2001:db8::1]x", ""},
		{"[2001:db8::1", ""},
		{"[192.0.2.1]", ""},
		{`"192.0.2.1`, ""},
		{`"`, ""},
		{"unknown", ""},
		{"_hidden", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, ok := parseNode(c.in)
		if c.want == "" {
			if ok {
				t.Errorf("parseNode(%q) = %v, true; want not an address", c.in, got)
			}
			continue
		}
		if want := netip.MustParseAddr(c.want); !ok || got != want {
			t.Errorf("parseNode(%q) = %v, %v; want %v, true", c.in, got, ok, want)
		}
	}
}
