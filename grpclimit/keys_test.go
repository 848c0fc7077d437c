package grpclimit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func peerContext(addr net.Addr) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: addr})
}

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestPeerIP(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string // "" for no key
	}{
		{tcp("203.0.113.7:5000"), "203.0.113.7"},
		{tcp("[2001:db8:1:2:3:4:5:6]:443"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:2:ffff::1]:443"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:3::1]:443"), "2001:db8:1:3::/64"},
		{tcp("[::ffff:198.51.100.9]:80"), "198.51.100.9"},
		{tcp("[fe80::1%eth0]:80"), "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}, "192.0.2.1"},
		{&net.UnixAddr{Name: "/run/app.sock", Net: "unix"}, ""},
		{&net.TCPAddr{}, ""},
		{nil, ""},
	} {
		got, err := PeerIP(peerContext(tc.addr), "/a/b")
		if got != tc.want || (err == nil) != (tc.want != "") || err != nil && !errors.Is(err, ErrNoKey) {
			t.Errorf("PeerIP(%v) = %q, %v, want %q (or ErrNoKey for none)", tc.addr, got, err, tc.want)
		}
	}
	if got, err := PeerIP(context.Background(), "/a/b"); !errors.Is(err, ErrNoKey) || got != "" {
		t.Errorf("PeerIP(no peer) = %q, %v, want no key", got, err)
	}
}

func TestPeerPrefix(t *testing.T) {
	for _, tc := range []struct {
		v4, v6 int
		addr   string
		want   string
	}{
		{24, 48, "198.51.100.77:1", "198.51.100.0/24"},
		{24, 48, "[2001:db8:aa:bb::1]:1", "2001:db8:aa::/48"},
		{32, 128, "[2001:db8::1]:1", "2001:db8::1"},
		{0, 0, "[2001:db8:1:2::1]:1", "2001:db8:1:2::/64"}, // the defaults
		{-5, 500, "[2001:db8::1]:1", "2001:db8::1"},
		{-5, 500, "10.1.2.3:1", "10.1.2.3"},
		{40, 8, "10.1.2.3:1", "10.1.2.3"},
	} {
		got, _ := PeerPrefix(tc.v4, tc.v6)(peerContext(tcp(tc.addr)), "/a/b")
		if got != tc.want {
			t.Errorf("PeerPrefix(%d, %d)(%s) = %q, want %q", tc.v4, tc.v6, tc.addr, got, tc.want)
		}
	}
}

func TestMetadataKey(t *testing.T) {
	key := Metadata("X-API-Key")
	for _, tc := range []struct {
		md   metadata.MD
		want string
	}{
		{metadata.Pairs("x-api-key", "k1"), "k1"},
		{metadata.Pairs("x-api-key", "", "x-api-key", "k2"), "k2"},
		{metadata.Pairs("x-api-key", ""), ""},
		{metadata.Pairs("authorization", "k"), ""},
		{nil, ""},
	} {
		got, err := key(metadata.NewIncomingContext(context.Background(), tc.md), "/a/b")
		if got != tc.want || (err == nil) != (tc.want != "") || err != nil && !errors.Is(err, ErrNoKey) {
			t.Errorf("Metadata(x-api-key) with %v = %q, %v, want %q (or ErrNoKey for none)", tc.md, got, err, tc.want)
		}
	}
}

func TestComposite(t *testing.T) {
	ctx := metadata.NewIncomingContext(peerContext(tcp("192.0.2.1:9")), metadata.Pairs("a", "x:1", "b", "2"))
	if got, _ := Composite(nil, FullMethod)(ctx, "/s/M"); got != "9:192.0.2.14:/s/M" {
		t.Errorf("Composite(PeerIP, FullMethod) = %q", got)
	}
	// Parts are length-prefixed: ("x:1", "2") and ("x", "1:2")-like splits differ.
	k1, _ := Composite(Metadata("a"), Metadata("b"))(ctx, "/s/M")
	ctx2 := metadata.NewIncomingContext(context.Background(), metadata.Pairs("a", "x", "b", "1:2"))
	k2, _ := Composite(Metadata("a"), Metadata("b"))(ctx2, "/s/M")
	if k1 == k2 {
		t.Errorf("Composite keys collide: %q", k1)
	}
	if _, err := Composite(Metadata("a"), Metadata("missing"))(ctx, "/s/M"); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "no metadata missing") {
		t.Errorf("Composite with a missing part: got %v, want the part's ErrNoKey", err)
	}
	if _, err := Composite()(ctx, "/s/M"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Composite(): got %v, want ErrNoKey", err)
	}
	empty := func(context.Context, string) (string, error) { return "", nil }
	if _, err := Composite(FullMethod, empty)(ctx, "/s/M"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Composite with an empty part: got %v, want ErrNoKey", err)
	}
}

func TestCheckAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts do not hold")
	}
	store := memorystore.New(nil)
	defer store.Close()
	big := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(1<<30))
	ctx := peerContext(tcp("203.0.113.7:5000"))
	for _, tc := range []struct {
		name string
		in   Interceptor
		max  float64
	}{
		{"implicit rule", Interceptor{Limiter: big, Headers: httplimit.HeadersNone}, 1},
		{"two rules, one TakeAll", Interceptor{Headers: httplimit.HeadersNone, Rules: []Rule{
			{Name: "ip", Limiter: big},
			{Name: "method", Limiter: big, Key: FullMethod},
		}}, 2},
		{"with an observer", Interceptor{Limiter: big, Headers: httplimit.HeadersNone, Observer: ratelimit.ObserverFunc(func(ratelimit.Event) {})}, 1},
	} {
		c, err := tc.in.compile()
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := c.check(ctx, "/pkg.S/M", nil, phaseCall); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > tc.max {
			t.Errorf("%s: %v allocations per call, want at most %v", tc.name, allocs, tc.max)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(1<<30))
	addrs := make([]context.Context, 1024)
	for i := range addrs {
		addrs[i] = peerContext(&net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1})
	}
	for _, tc := range []struct {
		name string
		in   Interceptor
	}{
		{"one rule", Interceptor{Limiter: lim, Headers: httplimit.HeadersNone}},
		{"one rule+metadata", Interceptor{Limiter: lim}},
		{"two rules", Interceptor{Headers: httplimit.HeadersNone, Rules: []Rule{
			{Name: "ip", Limiter: lim},
			{Name: "method", Limiter: lim, Key: FullMethod},
		}}},
	} {
		c, err := tc.in.compile()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := c.check(addrs[i%len(addrs)], "/pkg.S/M", nil, phaseCall); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// A call whose context has ended fails with the context's status, not the fail policy's.
func TestEndedContext(t *testing.T) {
	store := memorystore.New(nil)
	defer store.Close()
	c, err := Interceptor{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerSecond(1)), OnStoreError: ratelimit.FailClosed}.compile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(peerContext(tcp("192.0.2.1:1")))
	cancel()
	if _, err := c.check(ctx, "/pkg.S/M", nil, phaseCall); status.Code(err) != codes.Canceled {
		t.Errorf("check with a canceled context: %v, want Canceled", err)
	}
	ctx, cancel = context.WithDeadline(peerContext(tcp("192.0.2.1:1")), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.check(ctx, "/pkg.S/M", nil, phaseCall); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("check past the deadline: %v, want DeadlineExceeded", err)
	}
}
