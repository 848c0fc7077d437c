package grpclimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/clientip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// KeyFunc returns the key of a call under a rule, with the shape of [httplimit.KeyFunc].
// fullMethod is the call's method, such as "/pkg.Service/Method".
//
// A call without a usable key is one for which the KeyFunc returns an error, or an empty
// key: the rule's [MissingKeyPolicy] then decides, exempting the call
// (MissingKeySkip), failing it with codes.InvalidArgument (MissingKeyReject) or limiting
// it by its client address (MissingKeyFallback). Return an error wrapping [ErrNoKey] when
// the call simply carries no key (absent metadata, an anonymous caller), and an error
// that says what is wrong when what it carries is malformed: the error reaches
// [Interceptor.OnError] and the InvalidArgument status's message.
//
// The interceptor namespaces the key by rule, so different rules may return the same key
// without sharing a counter. A KeyFunc must be safe for concurrent use.
type KeyFunc func(ctx context.Context, fullMethod string) (string, error)

const (
	defaultIPv4Bits = 32
	defaultIPv6Bits = 64
)

// PeerIP is the default KeyFunc: the IP address of the connection's peer, with IPv6
// addresses grouped by their /64 prefix (one client usually holds a whole /64) and
// IPv4-mapped IPv6 addresses read as IPv4. Keys look like "203.0.113.7" and
// "2001:db8:1:2::/64". A peer that is not an IP address, such as a Unix socket or an
// in-process connection, has no key.
//
// The peer is the address that connected: behind a proxy it is the proxy's. PeerIP
// ignores forwarding metadata, which any client can send; rules without a Key use
// [Interceptor.ClientIP] instead, which reads it from trusted proxies only.
func PeerIP(ctx context.Context, _ string) (string, error) {
	return peerKey(ctx, defaultIPv4Bits, defaultIPv6Bits)
}

// errPeerNotIP says that the peer has no IP address, and errNoPeerIP that it is why a
// call has no key.
var (
	errPeerNotIP = errors.New("the peer has no IP address")
	errNoPeerIP  = fmt.Errorf("%w: %w", ErrNoKey, errPeerNotIP)
)

// PeerPrefix returns a KeyFunc like [PeerIP] that groups IPv4 peers by their first
// ipv4Bits bits and IPv6 peers by their first ipv6Bits bits, as the httplimit package's
// ClientIP does. A value ≤ 0 means the default (32 for IPv4, 64 for IPv6); values above
// the address length mean the whole address. Grouped keys are prefixes such as
// "198.51.100.0/24".
func PeerPrefix(ipv4Bits, ipv6Bits int) KeyFunc {
	if ipv4Bits <= 0 || ipv4Bits > 32 {
		ipv4Bits = defaultIPv4Bits
	}
	if ipv6Bits <= 0 {
		ipv6Bits = defaultIPv6Bits
	}
	ipv6Bits = min(ipv6Bits, 128)
	return func(ctx context.Context, _ string) (string, error) {
		return peerKey(ctx, ipv4Bits, ipv6Bits)
	}
}

// peerKey returns the peer's grouped address, or errNoPeerIP when the peer has no IP
// address. It allocates only the returned string.
func peerKey(ctx context.Context, v4, v6 int) (string, error) {
	ip, ok := peerAddr(ctx)
	if !ok {
		return "", errNoPeerIP
	}
	res := clientip.Resolver{V4: v4, V6: v6}
	return groupedKey("", ip, &res), nil
}

// peerAddr returns the normalised IP address of the connection's peer.
func peerAddr(ctx context.Context) (netip.Addr, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}, false
	}
	var ip netip.Addr
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	return clientip.Normalise(ip), true
}

// groupedKey returns prefix followed by the key of ip under res.
func groupedKey(prefix string, ip netip.Addr, res *clientip.Resolver) string {
	var buf [128]byte
	return string(res.AppendKey(append(buf[:0], prefix...), ip))
}

// clientIP derives the addresses of rules without a Key and of MissingKeyFallback, with
// the resolver httplimit.ClientIP uses, reading the forwarding metadata instead of a
// header.
type clientIP struct {
	res    clientip.Resolver
	header string // the metadata key of the ProxyHeader
}

func newClientIP(cfg httplimit.ClientIP) *clientIP {
	header := cfg.ProxyHeader
	if header == "" {
		header = "X-Forwarded-For"
	}
	return &clientIP{
		res: clientip.Resolver{
			Trusted:   slices.Clone(cfg.TrustedProxies),
			Forwarded: strings.EqualFold(header, "Forwarded"),
			V4:        cfg.IPv4Prefix,
			V6:        cfg.IPv6Prefix,
			NoKey:     ErrNoKey,
		},
		header: strings.ToLower(header),
	}
}

// key returns prefix followed by the client's grouped address, or an error when it is
// unknown. When the peer is a trusted proxy, the client is read from the forwarding
// metadata exactly as httplimit reads the header of the same name.
func (c *clientIP) key(ctx context.Context, prefix string) (string, error) {
	ip, ok := peerAddr(ctx)
	if !ok {
		return "", errPeerNotIP
	}
	if c.res.IsTrusted(ip) {
		client, err := c.res.Client(ip, metadata.ValueFromIncomingContext(ctx, c.header))
		if err != nil {
			return "", fmt.Errorf("metadata %s: %w", c.header, err)
		}
		ip = client
	}
	return groupedKey(prefix, ip, &c.res), nil
}

// Metadata returns a KeyFunc that reads the first non-empty value of the request metadata
// field name (case-insensitive), such as "x-api-key". A call without it has no key: the
// error wraps [ErrNoKey].
//
// The value is used as sent: a client can choose any value, so key by metadata that
// identifies a client only after authentication has checked it, or accept that clients
// can spread their calls over as many keys as they like.
func Metadata(name string) KeyFunc {
	name = strings.ToLower(name)
	missing := fmt.Errorf("%w: no metadata %s", ErrNoKey, name)
	return func(ctx context.Context, _ string) (string, error) {
		for _, v := range metadata.ValueFromIncomingContext(ctx, name) {
			if v != "" {
				return v, nil
			}
		}
		return "", missing
	}
}

// FullMethod is a KeyFunc that keys a call by its full method name, such as
// "/pkg.Service/Method": with it, a rule is a global limit per method, shared by all
// clients.
func FullMethod(_ context.Context, fullMethod string) (string, error) {
	return fullMethod, nil
}

// Composite returns a KeyFunc whose key combines the keys of parts, such as the peer's
// address and the method: the call has a key only if every part finds one, and the error
// of the first part that does not is Composite's. Parts are length-prefixed, so
// different combinations never produce the same key. A nil part stands for [PeerIP].
// With no parts, no call has a key.
func Composite(parts ...KeyFunc) KeyFunc {
	parts = slices.Clone(parts)
	for i, p := range parts {
		if p == nil {
			parts[i] = PeerIP
		}
	}
	return func(ctx context.Context, fullMethod string) (string, error) {
		if len(parts) == 0 {
			return "", errNoParts
		}
		var buf [128]byte
		b := buf[:0]
		for i, p := range parts {
			k, err := p(ctx, fullMethod)
			if err != nil {
				return "", err
			}
			if k == "" {
				return "", fmt.Errorf("%w: part %d of the composite key is empty", ErrNoKey, i)
			}
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(b, ':')
			b = append(b, k...)
		}
		return string(b), nil
	}
}

var errNoParts = fmt.Errorf("%w: a composite key of no parts", ErrNoKey)
