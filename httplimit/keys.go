package httplimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// KeyFunc returns the key a request is limited by: a client address, an API key, a user
// ID. It returns an error wrapping [ErrNoKey] when the request carries no usable key (a
// missing header, an anonymous user); the rule's [MissingKeyPolicy] then decides what
// happens. Any other error, and an empty key, are treated the same way.
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

// Addr returns the client's address as described on [ClientIP], normalised but not
// grouped by prefix. The error wraps [ErrNoKey].
func (c *ClientIP) Addr(r *http.Request) (netip.Addr, error) {
	peer, err := parsePeer(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, err
	}
	if !trusted(c.TrustedProxies, peer) {
		return peer, nil
	}
	var values []string
	name := c.ProxyHeader
	switch {
	case c.canonical:
		values = r.Header[name]
	case name == "":
		name = "X-Forwarded-For"
		values = r.Header[name]
	default:
		values = r.Header.Values(name)
	}
	if len(values) == 0 {
		return peer, nil // the proxy itself, or a request that did not come through it
	}
	return forwardedClient(values, strings.EqualFold(name, "Forwarded"), c.TrustedProxies)
}

// Prefix returns the network the client's address is grouped in: the address masked to
// IPv6Prefix or IPv4Prefix bits. The error wraps [ErrNoKey].
func (c *ClientIP) Prefix(r *http.Request) (netip.Prefix, error) {
	a, err := c.Addr(r)
	if err != nil {
		return netip.Prefix{}, err
	}
	return a.Prefix(c.bits(a))
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
	return appendPrefix(dst, a, c.bits(a)), nil
}

func (c *ClientIP) bits(a netip.Addr) int {
	if a.Is4() {
		if c.IPv4Prefix <= 0 || c.IPv4Prefix > 32 {
			return 32
		}
		return c.IPv4Prefix
	}
	switch {
	case c.IPv6Prefix <= 0:
		return 64
	case c.IPv6Prefix > 128:
		return 128
	}
	return c.IPv6Prefix
}

// appendPrefix appends a masked to bits, as an address when bits covers it all, else as
// a prefix.
func appendPrefix(dst []byte, a netip.Addr, bits int) []byte {
	if bits == a.BitLen() {
		return a.AppendTo(dst)
	}
	p, _ := a.Prefix(bits) // bits is in range for a's family
	dst = p.Addr().AppendTo(dst)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(bits), 10)
}

// parsePeer parses Request.RemoteAddr: "ip:port", "[ip6]:port", or a bare address.
func parsePeer(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalise(ap.Addr()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalise(a), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: peer address %q is not an IP address", ErrNoKey, truncate(s))
}

func normalise(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedClient walks the hops of a forwarding header, given as its field lines in
// order, and returns the rightmost address that is not a trusted proxy, or the leftmost
// address when all are trusted. forwarded selects RFC 7239 syntax; otherwise each hop is
// an address, as in X-Forwarded-For.
func forwardedClient(lines []string, forwarded bool, proxies []netip.Prefix) (netip.Addr, error) {
	// Walking left to right, the answer is the last hop that is untrusted or malformed:
	// exactly the first such hop walking from the right.
	var (
		first, last       netip.Addr
		lastBad           string
		seenLast, seenAny bool
	)
	visit := func(node string) {
		a, ok := parseNode(node)
		if !seenAny {
			first, seenAny = a, true
			if !ok {
				first = netip.Addr{}
			}
		}
		if !ok || !trusted(proxies, a) {
			seenLast = true
			last, lastBad = a, ""
			if !ok {
				last, lastBad = netip.Addr{}, node
			}
		}
	}
	for _, line := range lines {
		if forwarded {
			eachForwardedFor(line, visit)
		} else {
			for hop := range strings.SplitSeq(line, ",") {
				if strings.TrimSpace(hop) != "" {
					visit(hop)
				}
			}
		}
	}
	switch {
	case seenLast && last.IsValid():
		return last, nil
	case seenLast:
		return netip.Addr{}, fmt.Errorf("%w: forwarded address %q is not an IP address", ErrNoKey, truncate(lastBad))
	case first.IsValid():
		return first, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: empty forwarding header", ErrNoKey)
}

// parseNode parses one hop: an address, optionally quoted (RFC 7239), in brackets when
// IPv6, optionally with a port.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if strings.IndexByte(s, '\\') >= 0 {
			s = unescapeQuoted(s)
		}
	}
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		rest := s[end+1:]
		if rest != "" && !validPort(rest) {
			return netip.Addr{}, false
		}
		s = s[1:end]
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return normalise(a), true
	case strings.Count(s, ":") == 1: // IPv4 with a port
		host, port, _ := strings.Cut(s, ":")
		if !validPort(":" + port) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return normalise(a), true
}

// validPort reports whether s is ":" followed by a port: digits, or an RFC 7239
// obfuscated port ("_abc").
func validPort(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	s = s[1:]
	if s[0] == '_' {
		return len(s) > 1 && strings.Trim(s[1:], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
	}
	return len(s) <= 5 && strings.Trim(s, "0123456789") == ""
}

// eachForwardedFor calls visit with the for= value of each element of an RFC 7239
// Forwarded field line, in order, and with "" for an element that has none. Quoted
// strings may hold commas, semicolons and equals signs. Empty elements are skipped, as
// RFC 9110 list syntax allows.
func eachForwardedFor(line string, visit func(string)) {
	for {
		end := indexUnquoted(line, ',')
		elem := line[:end]
		if strings.TrimSpace(elem) != "" {
			node, found := "", false
			for {
				pend := indexUnquoted(elem, ';')
				name, value, ok := strings.Cut(elem[:pend], "=")
				if ok && !found && strings.EqualFold(strings.TrimSpace(name), "for") {
					node, found = value, true
				}
				if pend == len(elem) {
					break
				}
				elem = elem[pend+1:]
			}
			visit(node)
		}
		if end == len(line) {
			return
		}
		line = line[end+1:]
	}
}

// indexUnquoted returns the index of the first sep in s outside quoted strings, or len(s).
func indexUnquoted(s string, sep byte) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			return i
		}
	}
	return len(s)
}

// unescapeQuoted removes the backslashes of an RFC 9110 quoted-pair.
func unescapeQuoted(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
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
		return "", fmt.Errorf("%w: no route matches %s %q", ErrNoKey, r.Method, truncate(r.URL.Path))
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
