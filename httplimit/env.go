package httplimit

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/errwrap"
)

// FromEnv builds a Middleware from environment variables, read with getenv (pass
// [os.Getenv]), keeping its state in store. The variables are listed in the package
// documentation. Every limit is per client IP. An invalid value is an error naming the
// variable; so is a configuration with no limit at all. The Middleware is validated
// before it is returned.
func FromEnv(getenv func(string) string, store ratelimit.Store) (*Middleware, error) {
	e := envReader{getenv: getenv, store: store, alg: ratelimit.GCRA, m: &Middleware{}}
	for _, read := range []func() error{e.algorithm, e.clientIP, e.responses, e.exclude, e.routes, e.defaultLimit} {
		if err := read(); err != nil {
			return nil, err
		}
	}
	m := e.m
	if m.Limiter == nil && len(m.Rules) == 0 {
		return nil, fmt.Errorf("httplimit: no limit configured: set RATELIMIT_DEFAULT or RATELIMIT_ROUTES")
	}
	if err := m.Validate(); err != nil {
		// Each pattern is valid on its own: two of them conflict.
		return nil, errwrap.Op("httplimit", "RATELIMIT_ROUTES, RATELIMIT_EXCLUDE", err)
	}
	return m, nil
}

// envReader reads the variables of [FromEnv] into m, one group at a time.
type envReader struct {
	getenv func(string) string
	store  ratelimit.Store
	alg    ratelimit.Algorithm
	m      *Middleware
	routed []Rule // the rules of RATELIMIT_ROUTES
}

func (e *envReader) get(name string) string { return strings.TrimSpace(e.getenv(name)) }

// fail returns the error of variable name's value.
func (e *envReader) fail(name, format string, args ...any) error {
	return fmt.Errorf("httplimit: %s=%q: %s", name, e.getenv(name), fmt.Sprintf(format, args...))
}

func (e *envReader) algorithm() error {
	if v := e.get("RATELIMIT_ALGORITHM"); v != "" {
		a, err := ratelimit.ParseAlgorithm(v)
		if err != nil {
			return e.fail("RATELIMIT_ALGORITHM", "%v", err)
		}
		e.alg = a
	}
	return nil
}

func (e *envReader) clientIP() error {
	c := &e.m.ClientIP
	for _, f := range splitList(e.get("RATELIMIT_TRUSTED_PROXIES")) {
		p, err := parsePrefix(f)
		if err != nil {
			return e.fail("RATELIMIT_TRUSTED_PROXIES", "%q is neither an address nor a CIDR prefix", f)
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	if v := e.get("RATELIMIT_PROXY_HEADER"); v != "" {
		if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' || r == ':' }) {
			return e.fail("RATELIMIT_PROXY_HEADER", "not a header name")
		}
		c.ProxyHeader = v
	}
	if v := e.get("RATELIMIT_IPV6_PREFIX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 128 {
			return e.fail("RATELIMIT_IPV6_PREFIX", "want a prefix length from 1 to 128")
		}
		c.IPv6Prefix = n
	}
	return nil
}

// responses reads the header style and the fail policy, in the words of
// [HeaderStyle.String] and [ratelimit.FailPolicy.String], any case.
func (e *envReader) responses() error {
	if v := e.get("RATELIMIT_HEADERS"); v != "" {
		s, err := ParseHeaderStyle(strings.ToLower(v))
		if err != nil {
			return e.fail("RATELIMIT_HEADERS", "want ietf, legacy, both, none or draft03")
		}
		e.m.Headers = s
	}
	if v := e.get("RATELIMIT_FAIL"); v != "" {
		p, err := ratelimit.ParseFailPolicy(strings.ToLower(v))
		if err != nil || (p != ratelimit.FailOpen && p != ratelimit.FailClosed) {
			return e.fail("RATELIMIT_FAIL", "want open or closed")
		}
		e.m.OnStoreError = p
	}
	return nil
}

func (e *envReader) exclude() error {
	for p := range strings.SplitSeq(e.get("RATELIMIT_EXCLUDE"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if err := checkPattern(p); err != nil {
			return e.fail("RATELIMIT_EXCLUDE", "%v", err)
		}
		e.m.Exclude = append(e.m.Exclude, p)
	}
	return nil
}

func (e *envReader) routes() error {
	seen := map[string]bool{}
	for _, name := range splitList(e.get("RATELIMIT_ROUTES")) {
		if !validEnvName(name) {
			return e.fail("RATELIMIT_ROUTES", "route name %q: want letters, digits and underscores", name)
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return e.fail("RATELIMIT_ROUTES", "route %q is listed twice", name)
		}
		seen[lower] = true
		r, err := e.route(name)
		if err != nil {
			return err
		}
		e.routed = append(e.routed, r)
	}
	return nil
}

// route reads the RATELIMIT_ROUTE_<NAME> variable of the route RATELIMIT_ROUTES names.
func (e *envReader) route(name string) (Rule, error) {
	varName := "RATELIMIT_ROUTE_" + strings.ToUpper(name)
	spec := e.get(varName)
	if spec == "" {
		return Rule{}, e.fail(varName, "RATELIMIT_ROUTES lists %q, so want \"<pattern> <limit>\", such as \"GET /api/ 10/s\"", name)
	}
	pattern, limitText, ok := splitRoute(spec)
	if !ok {
		return Rule{}, e.fail(varName, "want \"<pattern> <limit>\", such as \"GET /api/ 10/s\"")
	}
	if err := checkPattern(pattern); err != nil {
		return Rule{}, e.fail(varName, "%v", err)
	}
	limit, err := ratelimit.ParseLimit(limitText)
	if err != nil {
		return Rule{}, e.fail(varName, "%v", err)
	}
	return Rule{Name: strings.ToLower(name), Pattern: pattern, Limiter: ratelimit.New(e.store, e.alg, limit)}, nil
}

// defaultLimit reads RATELIMIT_DEFAULT and puts the rules together.
func (e *envReader) defaultLimit() error {
	m := e.m
	if v := e.get("RATELIMIT_DEFAULT"); v != "" {
		limit, err := ratelimit.ParseLimit(v)
		if err != nil {
			return e.fail("RATELIMIT_DEFAULT", "%v", err)
		}
		m.Limiter = ratelimit.New(e.store, e.alg, limit)
		if len(e.routed) > 0 || len(m.Exclude) > 0 {
			// The default applies where no route does.
			m.Rules = append(m.Rules, Rule{Name: "default", Pattern: "/"})
		}
	}
	m.Rules = append(m.Rules, e.routed...)
	return nil
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
