package httplimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/go-ratelimit/ratelimit/internal/clientip"
)

// KeyFunc returns the key a request is limited by: a client address, an API key, a user
// ID. It returns an error wrapping [ErrNoKey] when the request carries no usable key (a
// missing header, an anonymous user); the rule's [MissingKeyPolicy] then decides what
// happens: the request is exempt from the rule (MissingKeySkip), answered 400
// (MissingKeyReject) or limited by its client IP (MissingKeyFallback). Any other error,
// and an empty key, are treated the same way; return an error that says what is wrong
// with a malformed key, as it reaches OnError and the detail of the 400 answer.
// grpclimit's KeyFunc has the same shape and rules.
//
// Keys are namespaced per rule by the middleware, so a KeyFunc returns only the
// distinguishing part ("alice", not "user:alice"), and two rules never share state by
// accident. A KeyFunc is called from many goroutines at once.
type KeyFunc func(*http.Request) (string, error)

// ErrNoKey reports a request that carries no key for a rule: a missing header, no user in
// the context, an address that could not be parsed. KeyFuncs wrap it; the rule's
// [MissingKeyPolicy] decides what happens to such a request.
var ErrNoKey = errors.New("httplimit: no key")

// ClientIP derives a client's address from a request, ready to key a limit. The zero
// value trusts no proxy: it uses the connection's peer address (Request.RemoteAddr) and
// ignores every forwarding header, which a client can set to anything.
//
// Behind reverse proxies, list them in TrustedProxies. When the peer is trusted, the
// address is read from ProxyHeader: its entries are walked from the right (the hop
// closest to this server) past every trusted proxy, and the first address that is not a
// trusted proxy is the client. Entries to its left were written by the client or by
// proxies nobody vouches for, and are never used. If every entry is trusted, the leftmost
// is the client. A malformed entry reached before any untrusted address (an unparsable
// address, "unknown", an obfuscated RFC 7239 node) makes the address unknown: an error
// wrapping [ErrNoKey], never a guess.
//
// Addresses are normalised: IPv4-mapped IPv6 addresses become IPv4, zones are dropped.
// IPv6 clients are grouped by prefix (/64 by default), since one host commonly holds a
// whole /64 and could otherwise rotate addresses to escape its limit.
//
// A ClientIP is safe for concurrent use; its fields must not change once in use.
type ClientIP struct {
	// TrustedProxies lists the networks of the reverse proxies in front of this server,
	// such as 10.0.0.0/8 or 203.0.113.7/32. Write IPv4 networks in IPv4 form. Default
	// none: forwarding headers are ignored.
	TrustedProxies []netip.Prefix

	// ProxyHeader names the one header trusted proxies set. Default "X-Forwarded-For".
	// "Forwarded" is parsed as RFC 7239 (its for= parameters); any other header, such as
	// "X-Real-IP" or "CF-Connecting-IP", as a comma-separated list of addresses, each
	// optionally with a port. Only one header is read: reading several would let a
	// client inject the one its proxy does not overwrite.
	ProxyHeader string

	// IPv6Prefix is the prefix length IPv6 clients are grouped by. Default (0) 64;
	// values above 128 mean 128, one key per address.
	IPv6Prefix int

	// IPv4Prefix is the prefix length IPv4 clients are grouped by. Default (0) 32, one key
	// per address; values above 32 mean 32.
	IPv4Prefix int

	canonical bool // ProxyHeader is set and in canonical form: read the map directly
}

// compiled returns a copy of c with ProxyHeader filled in and canonical, for fast lookups.
func (c ClientIP) compiled() *ClientIP {
	if c.ProxyHeader == "" {
		c.ProxyHeader = "X-Forwarded-For"
	}
	c.ProxyHeader = http.CanonicalHeaderKey(c.ProxyHeader)
	c.canonical = true
	return &c
}

// resolver returns the client-address resolver of c.
func (c *ClientIP) resolver() clientip.Resolver {
	return clientip.Resolver{
		Trusted:   c.TrustedProxies,
		Forwarded: strings.EqualFold(c.ProxyHeader, "Forwarded"),
		V4:        c.IPv4Prefix,
		V6:        c.IPv6Prefix,
		NoKey:     ErrNoKey,
	}
}

// Addr returns the client's address as described on [ClientIP], normalised but not
// grouped by prefix. The error wraps [ErrNoKey].
func (c *ClientIP) Addr(r *http.Request) (netip.Addr, error) {
	peer, err := clientip.ParsePeer(r.RemoteAddr, ErrNoKey)
	if err != nil {
		return netip.Addr{}, err
	}
	res := c.resolver()
	if !res.IsTrusted(peer) {
		return peer, nil
	}
	var values []string
	switch name := c.ProxyHeader; {
	case c.canonical:
		values = r.Header[name]
	case name == "":
		values = r.Header["X-Forwarded-For"]
	default:
		values = r.Header.Values(name)
	}
	return res.Client(peer, values)
}

// Prefix returns the network the client's address is grouped in: the address masked to
// IPv6Prefix or IPv4Prefix bits. The error wraps [ErrNoKey].
func (c *ClientIP) Prefix(r *http.Request) (netip.Prefix, error) {
	a, err := c.Addr(r)
	if err != nil {
		return netip.Prefix{}, err
	}
	res := c.resolver()
	return a.Prefix(res.Bits(a))
}

// Key is a [KeyFunc]: it returns the client's prefix as text, "192.0.2.1" for a whole
// IPv4 address, "2001:db8:1:2::/64" for a group. The error wraps [ErrNoKey].
func (c *ClientIP) Key(r *http.Request) (string, error) {
	var buf [64]byte
	b, err := c.appendKey(buf[:0], r)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendKey appends the text of Key to dst.
func (c *ClientIP) appendKey(dst []byte, r *http.Request) ([]byte, error) {
	a, err := c.Addr(r)
	if err != nil {
		return dst, err
	}
	res := c.resolver()
	return res.AppendKey(dst, a), nil
}

// Header returns a [KeyFunc] that keys requests by the value of the header name, such as
// "X-API-Key", trimmed of spaces; the first value when there are several. A missing or
// empty header is an error wrapping [ErrNoKey]. The value reaches the store as is: wrap
// the KeyFunc to hash secrets if the store is shared with people who should not read
// them.
func Header(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		v := strings.TrimSpace(r.Header.Get(name))
		if v == "" {
			return "", fmt.Errorf("%w: no %s header", ErrNoKey, name)
		}
		return v, nil
	}
}

// ContextValue returns a [KeyFunc] that keys requests by the value an authentication
// middleware stored in the request context under key: a string, an integer, or a
// [fmt.Stringer]. No value, an empty string, or a value of another type is an error
// wrapping [ErrNoKey].
func ContextValue(key any) KeyFunc {
	return func(r *http.Request) (string, error) {
		switch v := r.Context().Value(key).(type) {
		case string:
			if v != "" {
				return v, nil
			}
		case int:
			return strconv.Itoa(v), nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		case uint64:
			return strconv.FormatUint(v, 10), nil
		case fmt.Stringer:
			if s := v.String(); s != "" {
				return s, nil
			}
		}
		return "", fmt.Errorf("%w: no usable value under context key %v", ErrNoKey, key)
	}
}

// FromContext returns a [KeyFunc] that keys requests by what user returns for the
// request's context, such as the ID of the authenticated user; ok false means anonymous:
// an error wrapping [ErrNoKey].
func FromContext(user func(ctx context.Context) (id string, ok bool)) KeyFunc {
	return func(r *http.Request) (string, error) {
		id, ok := user(r.Context())
		if !ok || id == "" {
			return "", fmt.Errorf("%w: no user in the request context", ErrNoKey)
		}
		return id, nil
	}
}

// Route returns a [KeyFunc] that keys requests by the pattern that routes them: the
// request's own Pattern when the middleware runs inside mux's handlers, else the pattern
// mux would choose, such as "GET /api/items/{id}". Keyed alone, a rule then caps each
// route for all clients together; composed with a client key, each client on each route.
// A request no pattern matches is an error wrapping [ErrNoKey]. The number of keys is
// bounded by the number of patterns, whatever paths clients send.
func Route(mux *http.ServeMux) KeyFunc {
	return func(r *http.Request) (string, error) {
		if r.Pattern != "" {
			return r.Pattern, nil
		}
		if mux != nil {
			if _, p := mux.Handler(r); p != "" {
				return p, nil
			}
		}
		return "", fmt.Errorf("%w: no route matches %s %q", ErrNoKey, r.Method, clientip.Truncate(r.URL.Path))
	}
}

// Global is a [KeyFunc] that returns the same key for every request: the rule is one
// shared budget, a cap on everyone together (on one route when the rule has a Pattern).
func Global(*http.Request) (string, error) { return "*", nil }

// Composite returns a [KeyFunc] that keys requests by all of parts together, such as
// user and route. The parts are joined unambiguously (each prefixed with its length), so
// ("ab", "c") and ("a", "bc") differ. If any part fails, the composite fails with its
// error.
func Composite(parts ...KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		var b []byte
		for _, part := range parts {
			k, err := part(r)
			if err != nil {
				return "", err
			}
			if k == "" {
				return "", fmt.Errorf("%w: empty key part", ErrNoKey)
			}
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(b, ':')
			b = append(b, k...)
		}
		return string(b), nil
	}
}
