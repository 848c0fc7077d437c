package httplimit_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit/httplimit"
)

// FuzzForwardingHeaders feeds arbitrary peers and forwarding headers to ClientIP in every
// syntax: it must never panic, and must return either a normalised address or an error
// matching ErrNoKey. When the peer is not a trusted proxy, the headers must not matter.
func FuzzForwardingHeaders(f *testing.F) {
	f.Add("10.0.0.1:80", "203.0.113.9, 10.0.0.2", uint8(0))
	f.Add("10.0.0.1:80", `for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`, uint8(1))
	f.Add("[::ffff:10.0.0.1]:80", `for="\"[::1]\"", for=_x;for=1.2.3.4,,`, uint8(1))
	f.Add("10.0.0.1:80", "[2001:db8::1]:80, 1.2.3.4:5", uint8(2))
	f.Add("@", "", uint8(0))
	f.Add("10.0.0.1", `for="`, uint8(1))
	f.Add("[fe80::1%eth0]:1", "::ffff:1.2.3.4%x", uint8(0))
	headers := []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"}
	f.Fuzz(func(t *testing.T, peer, value string, which uint8) {
		name := headers[int(which)%len(headers)]
		c := &httplimit.ClientIP{
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
			ProxyHeader:    name,
			IPv6Prefix:     int(which),
		}
		r := request("GET", "/", peer)
		for line := range strings.SplitSeq(value, "\n") {
			r.Header.Add(name, line)
		}
		a, err := c.Addr(r)
		if err != nil {
			if !errors.Is(err, httplimit.ErrNoKey) {
				t.Fatalf("Addr error %v does not match ErrNoKey", err)
			}
		} else if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("Addr = %v: not a normalised address", a)
		}
		key, kerr := c.Key(r)
		if (kerr == nil) != (err == nil) || kerr == nil && key == "" {
			t.Fatalf("Key = %q, %v after Addr = %v, %v", key, kerr, a, err)
		}
		if kerr == nil {
			if _, perr := netip.ParsePrefix(key); perr != nil {
				if _, aerr := netip.ParseAddr(key); aerr != nil {
					t.Fatalf("Key %q is neither an address nor a prefix", key)
				}
			}
		}
		// Headers from an untrusted peer are ignored.
		if p, perr := netip.ParseAddrPort(peer); perr == nil && !p.Addr().Unmap().IsPrivate() && !netip.MustParsePrefix("2001:db8::/32").Contains(p.Addr()) {
			if err != nil || a != p.Addr().Unmap().WithZone("") {
				t.Fatalf("untrusted peer %s: Addr = %v, %v", peer, a, err)
			}
		}
	})
}
