package httplimit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-ratelimit/ratelimit"
)

// FromEnv builds a Middleware from environment variables, read with getenv (pass
// [os.Getenv]), keeping its state in store. The variables are listed in the package
// documentation. Every limit is per client IP. An invalid value is an error naming the
// variable; so is a configuration with no limit at all. The Middleware is validated
// before it is returned.
func FromEnv(getenv func(string) string, store ratelimit.Store) (*Middleware, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	fail := func(name, format string, args ...any) error {
		return fmt.Errorf("httplimit: %s=%q: %s", name, getenv(name), fmt.Sprintf(format, args...))
	}

	alg := ratelimit.GCRA
	if v := get("RATELIMIT_ALGORITHM"); v != "" {
		a, err := ratelimit.ParseAlgorithm(v)
		if err != nil {
			return nil, fail("RATELIMIT_ALGORITHM", "%v", err)
		}
		alg = a
	}

	m := &Middleware{}
	if v := get("RATELIMIT_TRUSTED_PROXIES"); v != "" {
		for _, f := range splitList(v) {
			p, err := parsePrefix(f)
			if err != nil {
				return nil, fail("RATELIMIT_TRUSTED_PROXIES", "%q is neither an address nor a CIDR prefix", f)
			}
			m.ClientIP.TrustedProxies = append(m.ClientIP.TrustedProxies, p)
		}
	}
	if v := get("RATELIMIT_PROXY_HEADER"); v != "" {
		if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
			return nil, fail("RATELIMIT_PROXY_HEADER", "not a header name")
		}
		m.ClientIP.ProxyHeader = v
	}
	if v := get("RATELIMIT_IPV6_PREFIX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 128 {
			return nil, fail("RATELIMIT_IPV6_PREFIX", "want a prefix length from 1 to 128")
		}
		m.ClientIP.IPv6Prefix = n
	}
	if v := get("RATELIMIT_HEADERS"); v != "" {
		s, err := ParseHeaderStyle(strings.ToLower(v))
		if err != nil {
			return nil, fail("RATELIMIT_HEADERS", "want ietf, legacy, both, none or draft03")
		}
		m.Headers = s
	}
	if v := get("RATELIMIT_FAIL"); v != "" {
		switch strings.ToLower(v) {
		case "open":
			m.OnStoreError = ratelimit.FailOpen
		case "closed":
			m.OnStoreError = ratelimit.FailClosed
		default:
			return nil, fail("RATELIMIT_FAIL", "want open or closed")
		}
	}
	if v := get("RATELIMIT_EXCLUDE"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				if err := checkPattern(p); err != nil {
					return nil, fail("RATELIMIT_EXCLUDE", "%v", err)
				}
				m.Exclude = append(m.Exclude, p)
			}
		}
	}

	var routes []Rule
	if v := get("RATELIMIT_ROUTES"); v != "" {
		seen := map[string]bool{}
		for _, name := range splitList(v) {
			if !validEnvName(name) {
				return nil, fail("RATELIMIT_ROUTES", "route name %q: want letters, digits and underscores", name)
			}
			lower := strings.ToLower(name)
			if seen[lower] {
				return nil, fail("RATELIMIT_ROUTES", "route %q is listed twice", name)
			}
			seen[lower] = true
			varName := "RATELIMIT_ROUTE_" + strings.ToUpper(name)
			spec := get(varName)
			if spec == "" {
				return nil, fail(varName, "RATELIMIT_ROUTES lists %q, so want \"<pattern> <limit>\", such as \"GET /api/ 10/s\"", name)
			}
			pattern, limitText, ok := splitRoute(spec)
			if !ok {
				return nil, fail(varName, "want \"<pattern> <limit>\", such as \"GET /api/ 10/s\"")
			}
			if err := checkPattern(pattern); err != nil {
				return nil, fail(varName, "%v", err)
			}
			limit, err := ratelimit.ParseLimit(limitText)
			if err != nil {
				return nil, fail(varName, "%v", err)
			}
			routes = append(routes, Rule{Name: lower, Pattern: pattern, Limiter: ratelimit.New(store, alg, limit)})
		}
	}

	if v := get("RATELIMIT_DEFAULT"); v != "" {
		limit, err := ratelimit.ParseLimit(v)
		if err != nil {
			return nil, fail("RATELIMIT_DEFAULT", "%v", err)
		}
		m.Limiter = ratelimit.New(store, alg, limit)
		if len(routes) > 0 || len(m.Exclude) > 0 {
			// The default applies where no route does.
			m.Rules = append(m.Rules, Rule{Name: "default", Pattern: "/"})
		}
	}
	m.Rules = append(m.Rules, routes...)
	if m.Limiter == nil && len(m.Rules) == 0 {
		return nil, fmt.Errorf("httplimit: no limit configured: set RATELIMIT_DEFAULT or RATELIMIT_ROUTES")
	}
	if err := m.Validate(); err != nil {
		// Each pattern is valid on its own: two of them conflict.
		return nil, fmt.Errorf("httplimit: RATELIMIT_ROUTES, RATELIMIT_EXCLUDE: %w", err)
	}
	return m, nil
}

// splitList splits a list separated by commas and/or spaces.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validEnvName(s string) bool {
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}

// splitRoute splits "GET /api/{id} 10/s burst 5" into the pattern, which ends at the
// first space after its path's leading slash, and the limit.
func splitRoute(s string) (pattern, limit string, ok bool) {
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return "", "", false
	}
	end := strings.IndexFunc(s[slash:], unicode.IsSpace)
	if end < 0 {
		return "", "", false
	}
	pattern, limit = strings.TrimSpace(s[:slash+end]), strings.TrimSpace(s[slash+end:])
	return pattern, limit, pattern != "" && limit != ""
}
