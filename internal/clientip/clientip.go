// Package clientip resolves a client's address from its connection's peer address and
// the forwarding header (or gRPC metadata) trusted proxies set: the one resolver behind
// httplimit.ClientIP and grpclimit's client addresses, whatever the transport.
package clientip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Resolver resolves client addresses. Its zero value trusts no proxy.
type Resolver struct {
	// Trusted are the networks of the trusted proxies.
	Trusted []netip.Prefix
	// Forwarded selects RFC 7239 syntax for the header; otherwise it is a
	// comma-separated list of addresses, as X-Forwarded-For.
	Forwarded bool
	// V4, V6 are the prefix lengths clients are grouped by; out of range means the
	// defaults, 32 and 64 (values above the address length mean all of it).
	V4, V6 int
	// NoKey is wrapped by every error: the front end's "no key" sentinel.
	NoKey error
}

// Client returns the client of a connection from peer: peer itself unless it is a
// trusted proxy that forwarded the values (the header's field lines, in order), then the
// rightmost untrusted address among them.
func (r *Resolver) Client(peer netip.Addr, values []string) (netip.Addr, error) {
	peer = Normalise(peer)
	if len(values) == 0 || !Trusted(r.Trusted, peer) {
		return peer, nil
	}
	return forwardedClient(values, r.Forwarded, r.Trusted, r.NoKey)
}

// IsTrusted reports whether peer is a trusted proxy, whose forwarding header is read.
func (r *Resolver) IsTrusted(peer netip.Addr) bool {
	return len(r.Trusted) > 0 && Trusted(r.Trusted, Normalise(peer))
}

// Bits returns the prefix length a is grouped by.
func (r *Resolver) Bits(a netip.Addr) int {
	if a.Is4() {
		if r.V4 <= 0 || r.V4 > 32 {
			return 32
		}
		return r.V4
	}
	switch {
	case r.V6 <= 0:
		return 64
	case r.V6 > 128:
		return 128
	}
	return r.V6
}

// AppendKey appends the key of client a: its address, or its group as a prefix.
func (r *Resolver) AppendKey(dst []byte, a netip.Addr) []byte {
	return AppendPrefix(dst, a, r.Bits(a))
}

// AppendPrefix appends a masked to bits, as an address when bits covers it all, else as
// a prefix.
func AppendPrefix(dst []byte, a netip.Addr, bits int) []byte {
	if bits == a.BitLen() {
		return a.AppendTo(dst)
	}
	p, _ := a.Prefix(bits) // bits is in range for a's family
	dst = p.Addr().AppendTo(dst)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(bits), 10)
}

// ParsePeer parses an http.Request's RemoteAddr: "ip:port", "[ip6]:port", or a bare address.
func ParsePeer(s string, noKey error) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return Normalise(ap.Addr()), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return Normalise(a), nil
	}
	return netip.Addr{}, fmt.Errorf("%w: peer address %q is not an IP address", noKey, Truncate(s))
}

// Normalise returns a with IPv4-mapped IPv6 read as IPv4 and without its zone.
func Normalise(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Trusted reports whether a is in one of proxies.
func Trusted(proxies []netip.Prefix, a netip.Addr) bool {
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
func forwardedClient(lines []string, forwarded bool, proxies []netip.Prefix, noKey error) (netip.Addr, error) {
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
		if !ok || !Trusted(proxies, a) {
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
		return netip.Addr{}, fmt.Errorf("%w: forwarded address %q is not an IP address", noKey, Truncate(lastBad))
	case first.IsValid():
		return first, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: empty forwarding header", noKey)
}

// parseNode parses one hop: an address, optionally quoted (RFC 7239), in brackets when
// IPv6, optionally with a port.
func parseNode(s string) (netip.Addr, bool) {
	s = unquoteNode(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "["):
		return parseBracketed(s)
	case strings.Count(s, ":") == 1:
		return parseIPv4Port(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return Normalise(a), true
}

// unquoteNode strips the quotes of an RFC 7239 quoted-string node and resolves its
// escapes; other text is returned as is.
func unquoteNode(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') >= 0 {
		s = unescapeQuoted(s)
	}
	return s
}

// parseBracketed parses "[IPv6]" optionally followed by a port.
func parseBracketed(s string) (netip.Addr, bool) {
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return netip.Addr{}, false
	}
	if rest := s[end+1:]; rest != "" && !validPort(rest) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s[1:end])
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return Normalise(a), true
}

// parseIPv4Port parses "IPv4:port".
func parseIPv4Port(s string) (netip.Addr, bool) {
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

// Truncate shortens s to 64 bytes for an error message.
func Truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
