package fiberlimit

import (
	"net"
	"net/netip"
	"testing"
)

func TestRemotePeer(t *testing.T) {
	cases := []struct {
		name     string
		addr     net.Addr
		wantPeer netip.AddrPort
		wantText string
	}{
		{"tcp v4-mapped", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 4711}, netip.MustParseAddrPort("192.0.2.1:4711"), ""},
		{"tcp v6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}, netip.MustParseAddrPort("[2001:db8::1]:80"), ""},
		{"unix", &net.UnixAddr{Name: "/run/app.sock", Net: "unix"}, netip.AddrPort{}, "/run/app.sock"},
		{"nil", nil, netip.AddrPort{}, ""},
	}
	for _, c := range cases {
		peer, text := remotePeer(c.addr)
		if peer != c.wantPeer || text != c.wantText {
			t.Errorf("%s: remotePeer = %v, %q; want %v, %q", c.name, peer, text, c.wantPeer, c.wantText)
		}
	}
}
