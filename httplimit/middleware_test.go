package httplimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func newStore(t testing.TB) *memorystore.Store {
	s := memorystore.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "hello\n")
})

// serve starts a real server running mw around hello.
func serve(t *testing.T, mw *httplimit.Middleware) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mw.Handler(hello))
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request with the given headers (pairs of name, value) and returns the
// response with its body read.
func do(t *testing.T, method, url string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// statuses sends n GET requests to url and returns their status codes.
func statuses(t *testing.T, n int, url string, headers ...string) []int {
	t.Helper()
	var codes []int
	for range n {
		resp, _ := do(t, "GET", url, headers...)
		codes = append(codes, resp.StatusCode)
	}
	return codes
}

func codesEqual(a []int, b ...int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// request builds a server-side request from the given peer address.
func request(method, target, remoteAddr string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remoteAddr
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

// rateLimit parses the IETF fields of h strictly and returns the RateLimit item's
// name, r and t.
func rateLimit(t *testing.T, h http.Header) (name string, r, tt int64) {
	t.Helper()
	for _, field := range []string{"RateLimit-Policy", "RateLimit"} {
		if len(h.Values(field)) != 1 {
			t.Fatalf("%s: %q, want one field line", field, h.Values(field))
		}
	}
	policies, err := parseSFList(h.Get("RateLimit-Policy"))
	if err != nil {
		t.Fatalf("RateLimit-Policy %q: %v", h.Get("RateLimit-Policy"), err)
	}
	for _, p := range policies {
		if _, ok := p.value.(string); !ok {
			t.Errorf("RateLimit-Policy %q: item %v is not a string", h.Get("RateLimit-Policy"), p.value)
		}
		q, ok := p.param("q")
		if qi, isInt := q.(int64); !ok || !isInt || qi < 0 {
			t.Errorf("RateLimit-Policy %q: q = %v, want a non-negative integer", h.Get("RateLimit-Policy"), q)
		}
		w, ok := p.param("w")
		if wi, isInt := w.(int64); !ok || !isInt || wi <= 0 {
			t.Errorf("RateLimit-Policy %q: w = %v, want a positive integer", h.Get("RateLimit-Policy"), w)
		}
	}
	items, err := parseSFList(h.Get("RateLimit"))
	if err != nil || len(items) != 1 {
		t.Fatalf("RateLimit %q: %v, want one item", h.Get("RateLimit"), err)
	}
	name, ok := items[0].value.(string)
	rv, rok := items[0].param("r")
	tv, tok := items[0].param("t")
	ri, rIsInt := rv.(int64)
	ti, tIsInt := tv.(int64)
	if !ok || !rok || !tok || !rIsInt || !tIsInt || ri < 0 || ti < 0 {
		t.Fatalf("RateLimit %q: want \"name\";r=<int>;t=<int>", h.Get("RateLimit"))
	}
	found := false
	for _, p := range policies {
		found = found || p.value == name
	}
	if !found {
		t.Errorf("RateLimit names %q, which RateLimit-Policy %q does not list", name, h.Get("RateLimit-Policy"))
	}
	return name, ri, ti
}

func TestZeroValueMiddleware(t *testing.T) {
	store := newStore(t)
	srv := serve(t, &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(3))})

	// GCRA at 3/hour: one unit every 1200 s.
	for i, want := range []struct{ r, t int64 }{{2, 1200}, {1, 2400}, {0, 3600}} {
		resp, body := do(t, "GET", srv.URL)
		if resp.StatusCode != 200 || body != "hello\n" {
			t.Fatalf("request %d: %d %q, want 200 hello", i+1, resp.StatusCode, body)
		}
		if got := resp.Header.Get("RateLimit-Policy"); got != `"default";q=3;w=3600` {
			t.Errorf("request %d: RateLimit-Policy %q", i+1, got)
		}
		name, r, tt := rateLimit(t, resp.Header)
		if name != "default" || r != want.r || tt != want.t {
			t.Errorf("request %d: RateLimit %q, want r=%d;t=%d", i+1, resp.Header.Get("RateLimit"), want.r, want.t)
		}
		if resp.Header.Get("Retry-After") != "" {
			t.Errorf("request %d: Retry-After on an allowed response", i+1)
		}
	}

	resp, body := do(t, "GET", srv.URL)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("request 4: %d, want 429", resp.StatusCode)
	}
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || retry != 1200 {
		t.Errorf("Retry-After %q, want 1200", resp.Header.Get("Retry-After"))
	}
	_, r, tt := rateLimit(t, resp.Header)
	if r != 0 || int(tt) > retry {
		t.Errorf("RateLimit %q with Retry-After %d: want r=0 and t ≤ Retry-After", resp.Header.Get("RateLimit"), retry)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var problem struct {
		Type     string   `json:"type"`
		Title    string   `json:"title"`
		Status   int      `json:"status"`
		Violated []string `json:"violated-policies"`
	}
	if err := json.Unmarshal([]byte(body), &problem); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if problem.Type != "https://iana.org/assignments/http-problem-types#quota-exceeded" || problem.Status != 429 ||
		len(problem.Violated) != 1 || problem.Violated[0] != "default" || problem.Title == "" {
		t.Errorf("problem %+v", problem)
	}
}

func TestSpoofedForwardingHeadersIgnored(t *testing.T) {
	store := newStore(t)
	srv := serve(t, &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(2))})
	var codes []int
	for i := range 4 {
		fake := fmt.Sprintf("198.51.100.%d", i+1)
		resp, _ := do(t, "GET", srv.URL, "X-Forwarded-For", fake, "X-Real-IP", fake, "Forwarded", "for="+fake)
		codes = append(codes, resp.StatusCode)
	}
	if !codesEqual(codes, 200, 200, 429, 429) {
		t.Errorf("statuses %v: a client rotating forwarding headers escaped its limit", codes)
	}
}

func TestTrustedProxyOverRealServer(t *testing.T) {
	store := newStore(t)
	mw := &httplimit.Middleware{
		Limiter:  ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(1)),
		ClientIP: httplimit.ClientIP{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	}
	srv := serve(t, mw)
	// The loopback peer is a trusted proxy: clients are told apart by the address it appended.
	if c := statuses(t, 2, srv.URL, "X-Forwarded-For", "203.0.113.1"); !codesEqual(c, 200, 429) {
		t.Errorf("client 1: %v", c)
	}
	if c := statuses(t, 1, srv.URL, "X-Forwarded-For", "203.0.113.2"); !codesEqual(c, 200) {
		t.Errorf("client 2: %v", c)
	}
	// Client 1 spoofing an address to the left of what the proxy appended gains nothing.
	if c := statuses(t, 1, srv.URL, "X-Forwarded-For", "192.0.2.99, 203.0.113.1"); !codesEqual(c, 429) {
		t.Errorf("client 1 spoofing: %v", c)
	}
}

func TestClientIPAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		header  string // ProxyHeader
		peer    string
		values  []string
		want    string // "" for an error
		proxies []netip.Prefix
	}{
		{name: "untrusted peer, header ignored", peer: "198.51.100.1:1234", values: []string{"203.0.113.9"}, want: "198.51.100.1"},
		{name: "no proxies configured", peer: "10.0.0.1:1", values: []string{"203.0.113.9"}, want: "10.0.0.1", proxies: []netip.Prefix{}},
		{name: "one proxy", peer: "10.0.0.1:1", values: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of proxies", peer: "10.0.0.1:1", values: []string{"203.0.113.9, 10.0.0.2, 10.1.1.1"}, want: "203.0.113.9"},
		{name: "client spoofs to the left", peer: "10.0.0.1:1", values: []string{"1.1.1.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "client spoofs a trusted address", peer: "10.0.0.1:1", values: []string{"10.9.9.9, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "split over field lines", peer: "10.0.0.1:1", values: []string{"1.1.1.1", "203.0.113.9, 10.0.0.5"}, want: "203.0.113.9"},
		{name: "all trusted", peer: "10.0.0.1:1", values: []string{"10.0.0.3, 10.0.0.2"}, want: "10.0.0.3"},
		{name: "garbage to the right", peer: "10.0.0.1:1", values: []string{"203.0.113.9, garbage"}, want: ""},
		{name: "garbage to the left", peer: "10.0.0.1:1", values: []string{"garbage, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "address with port", peer: "10.0.0.1:1", values: []string{"203.0.113.9:4711"}, want: "203.0.113.9"},
		{name: "bracketed IPv6 with port", peer: "10.0.0.1:1", values: []string{"[2001:db8::1]:4711"}, want: "2001:db8::1"},
		{name: "IPv4-mapped", peer: "10.0.0.1:1", values: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "IPv4-mapped trusted peer", peer: "[::ffff:10.0.0.1]:1", values: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "IPv6 zone dropped", peer: "[fe80::1%eth0]:1", want: "fe80::1"},
		{name: "IPv6 proxy", peer: "[2001:db8:ffff::1]:1", values: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "no header from a trusted peer", peer: "10.0.0.1:1", want: "10.0.0.1"},
		{name: "empty header", peer: "10.0.0.1:1", values: []string{" , "}, want: ""},
		{name: "peer without port", peer: "198.51.100.1", want: "198.51.100.1"},
		{name: "peer not an address", peer: "@", want: ""},
		{name: "X-Real-IP", header: "X-Real-IP", peer: "10.0.0.1:1", values: []string{"203.0.113.7"}, want: "203.0.113.7"},
		{name: "Forwarded", header: "Forwarded", peer: "10.0.0.1:1",
			values: []string{`for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded, case and spaces", header: "Forwarded", peer: "10.0.0.1:1",
			values: []string{`proto=https; FOR = 192.0.2.60 , for=10.0.0.9`}, want: "192.0.2.60"},
		{name: "Forwarded unknown node", header: "Forwarded", peer: "10.0.0.1:1", values: []string{"for=192.0.2.60, for=unknown"}, want: ""},
		{name: "Forwarded obfuscated node", header: "Forwarded", peer: "10.0.0.1:1", values: []string{"for=_hidden"}, want: ""},
		{name: "Forwarded element without for", header: "Forwarded", peer: "10.0.0.1:1", values: []string{"for=192.0.2.60, proto=http"}, want: ""},
		{name: "Forwarded quoted comma", header: "Forwarded", peer: "10.0.0.1:1", values: []string{`for="192.0.2.1, 192.0.2.2"`}, want: ""},
		{name: "Forwarded IPv6 unbracketed is invalid quoted", header: "Forwarded", peer: "10.0.0.1:1", values: []string{`for="2001:db8::1"`}, want: "2001:db8::1"},
		{name: "Forwarded obfuscated port", header: "Forwarded", peer: "10.0.0.1:1", values: []string{`for="192.0.2.43:_p1"`}, want: "192.0.2.43"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &httplimit.ClientIP{TrustedProxies: proxies, ProxyHeader: tt.header}
			if tt.proxies != nil {
				c.TrustedProxies = tt.proxies
			}
			name := tt.header
			if name == "" {
				name = "X-Forwarded-For"
			}
			r := request("GET", "/", tt.peer)
			for _, v := range tt.values {
				r.Header.Add(name, v)
			}
			got, err := c.Addr(r)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("Addr = %v, want an error", got)
			case tt.want == "":
				if !errors.Is(err, httplimit.ErrNoKey) {
					t.Errorf("Addr error %v does not match ErrNoKey", err)
				}
			case err != nil:
				t.Errorf("Addr: %v, want %s", err, tt.want)
			case got.String() != tt.want:
				t.Errorf("Addr = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestClientIPKeyGroupsIPv6(t *testing.T) {
	tests := []struct {
		c    httplimit.ClientIP
		peer string
		want string
	}{
		{httplimit.ClientIP{}, "192.0.2.1:80", "192.0.2.1"},
		{httplimit.ClientIP{}, "[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
		{httplimit.ClientIP{}, "[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{httplimit.ClientIP{IPv6Prefix: 48}, "[2001:db8:1:2::1]:80", "2001:db8:1::/48"},
		{httplimit.ClientIP{IPv6Prefix: 128}, "[2001:db8:1:2::1]:80", "2001:db8:1:2::1"},
		{httplimit.ClientIP{IPv6Prefix: 500}, "[2001:db8:1:2::1]:80", "2001:db8:1:2::1"},
		{httplimit.ClientIP{IPv4Prefix: 24}, "192.0.2.77:80", "192.0.2.0/24"},
	}
	for _, tt := range tests {
		got, err := tt.c.Key(request("GET", "/", tt.peer))
		if err != nil || got != tt.want {
			t.Errorf("%+v.Key(%s) = %q, %v; want %q", tt.c, tt.peer, got, err, tt.want)
		}
	}
}

func TestIPv6ClientsShareTheirSlash64(t *testing.T) {
	store := newStore(t)
	mw := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(2))}
	check := func(peer string) bool {
		d, err := mw.Check(request("GET", "/", peer))
		if err != nil {
			t.Fatalf("Check from %s: %v", peer, err)
		}
		return d.Allowed
	}
	// Two addresses of one /64, then a third: the /64 has had its 2.
	if !check("[2001:db8:0:1::1]:1") || !check("[2001:db8:0:1::ffff]:2") || check("[2001:db8:0:1:8000::1]:3") {
		t.Error("addresses of one /64 did not share a budget")
	}
	if !check("[2001:db8:0:2::1]:1") {
		t.Error("the next /64 was limited with the first")
	}

	// And over a real IPv6 loopback connection, when the machine has one.
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer((&httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(1))}).Handler(hello))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	if c := statuses(t, 2, srv.URL); !codesEqual(c, 200, 429) {
		t.Errorf("over [::1]: %v", c)
	}
}

func TestPerRouteRules(t *testing.T) {
	store := newStore(t)
	lim := func(n int) *ratelimit.Limiter {
		return ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(n))
	}
	mw := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "login", Pattern: "POST /login", Limiter: lim(1)},
			{Name: "api", Pattern: "/api/", Limiter: lim(2)},
			{Name: "item", Pattern: "GET /api/items/{id}", Limiter: lim(3)},
			{Name: "default", Pattern: "/", Limiter: lim(4)},
		},
		Exclude: []string{"GET /healthz", "/static/"},
	}
	srv := serve(t, mw)
	name := func(resp *http.Response) string {
		n, _, _ := rateLimit(t, resp.Header)
		return n
	}

	resp, _ := do(t, "POST", srv.URL+"/login")
	if resp.StatusCode != 200 || name(resp) != "login" {
		t.Errorf("POST /login: %d %s", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	if resp, _ := do(t, "POST", srv.URL+"/login"); resp.StatusCode != 429 {
		t.Errorf("second POST /login: %d, want 429", resp.StatusCode)
	}
	// GET /login is not the login route: the default rule applies.
	if resp, _ := do(t, "GET", srv.URL+"/login"); resp.StatusCode != 200 || name(resp) != "default" {
		t.Errorf("GET /login: %d %s", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	// The most specific pattern wins: items have their own budget, apart from /api/.
	if c := statuses(t, 4, srv.URL+"/api/items/7"); !codesEqual(c, 200, 200, 200, 429) {
		t.Errorf("GET /api/items/7: %v", c)
	}
	if c := statuses(t, 3, srv.URL+"/api/other"); !codesEqual(c, 200, 200, 429) {
		t.Errorf("GET /api/other: %v", c)
	}
	// Spelling the path differently does not escape the rule.
	for _, p := range []string{"/api//other", "/x/../api/other", "/api"} {
		d, err := mw.Check(request("GET", p, "127.0.0.1:1"))
		if err != nil || d.Status != 429 {
			t.Errorf("Check GET %s: %d %v, want 429 from rule api", p, d.Status, err)
		}
	}
	// Excluded routes are never limited and carry no headers.
	for range 6 {
		resp, _ := do(t, "GET", srv.URL+"/healthz")
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit") != "" {
			t.Fatalf("GET /healthz: %d %q", resp.StatusCode, resp.Header.Get("RateLimit"))
		}
	}
	if c := statuses(t, 6, srv.URL+"/static/app.js"); !codesEqual(c, 200, 200, 200, 200, 200, 200) {
		t.Errorf("GET /static/app.js: %v", c)
	}
	// POST /healthz is not excluded: the default rule, which GET /login used once.
	if c := statuses(t, 0, srv.URL); len(c) != 0 {
		t.Fatal()
	}
	resp, _ = do(t, "POST", srv.URL+"/healthz")
	if resp.StatusCode != 200 || name(resp) != "default" {
		t.Errorf("POST /healthz: %d %s", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
}

func TestSeveralLimitsNoCounterPollution(t *testing.T) {
	store := newStore(t)
	mw := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(10))},
			{Name: "user", Key: httplimit.Header("X-User"), KeyClass: "user", Limiter: ratelimit.New(store, ratelimit.SlidingWindowLog, ratelimit.PerHour(1))},
			{Name: "global", Key: httplimit.Global, KeyClass: "global", Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(100))},
		},
		Headers: httplimit.HeadersBoth,
	}
	srv := serve(t, mw)
	if c := statuses(t, 5, srv.URL, "X-User", "alice"); !codesEqual(c, 200, 429, 429, 429, 429) {
		t.Fatalf("alice: %v", c)
	}
	// Four denials took nothing from "ip" or "global".
	d, err := mw.Check(request("GET", "/", "127.0.0.1:9", "X-User", "bob"))
	if err != nil || !d.Allowed {
		t.Fatalf("bob: %+v %v", d, err)
	}
	remaining := map[string]int{}
	for _, rr := range d.Results() {
		remaining[rr.Name] = rr.Result.Remaining
	}
	if remaining["ip"] != 8 || remaining["global"] != 98 || remaining["user"] != 0 {
		t.Errorf("remaining after alice's 1 + bob's 1: %v, want ip 8, global 98, user 0", remaining)
	}
	// The headers carry the rule closest to exhaustion: bob's user rule.
	resp, _ := do(t, "GET", srv.URL, "X-User", "carol")
	if n, r, _ := rateLimit(t, resp.Header); n != "user" || r != 0 {
		t.Errorf("RateLimit %q, want the user rule", resp.Header.Get("RateLimit"))
	}
	if got := resp.Header.Get("X-RateLimit-Limit"); got != "1" {
		t.Errorf("X-RateLimit-Limit %q, want 1", got)
	}
	if got := resp.Header.Get("RateLimit-Policy"); got != `"ip";q=10;w=3600, "user";q=1;w=3600, "global";q=100;w=3600` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	// The problem body names the rule that denied.
	resp, body := do(t, "GET", srv.URL, "X-User", "carol")
	if resp.StatusCode != 429 || !strings.Contains(body, `"violated-policies":["user"]`) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func TestAcrossStoresOnlyEarlierStoresLeak(t *testing.T) {
	first, second := newStore(t), newStore(t)
	mw := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: ratelimit.New(first, ratelimit.FixedWindow, ratelimit.PerHour(10))},
		{Name: "user", Key: httplimit.Header("X-User"), Limiter: ratelimit.New(second, ratelimit.FixedWindow, ratelimit.PerHour(1))},
	}}
	for range 3 {
		mw.Check(request("GET", "/", "192.0.2.1:1", "X-User", "alice"))
	}
	// The first store was decided before the second denied: its units stay taken.
	r, err := first.Take(t.Context(), "2:ip:k:192.0.2.1", ratelimit.FixedWindow, ratelimit.PerHour(10), 0)
	if err != nil || r.Remaining != 7 {
		t.Errorf("first store: %+v %v, want 7 remaining (documented leak)", r, err)
	}
}

// takeOnly is a memorystore that does not offer TakeAll, as a third-party store might not.
type takeOnly struct{ s *memorystore.Store }

func (t takeOnly) Take(ctx context.Context, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	return t.s.Take(ctx, key, alg, l, n)
}

func (t takeOnly) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	return t.s.Reset(ctx, key, alg)
}

func TestStoresDecidedInTurn(t *testing.T) {
	one, two := newStore(t), newStore(t)
	hour := func(s ratelimit.Store, n int) *ratelimit.Limiter {
		return ratelimit.New(s, ratelimit.FixedWindow, ratelimit.PerHour(n))
	}
	remaining := func(s ratelimit.Store, rule, key string) int {
		r, err := s.Take(t.Context(), strconv.Itoa(len(rule))+":"+rule+":k:"+key, ratelimit.FixedWindow, ratelimit.PerHour(10), 0)
		if err != nil {
			t.Fatal(err)
		}
		return r.Remaining
	}

	// Rules a and c share a store, b is on another in between: a and c are still decided
	// together, atomically, so c's denial takes nothing from a.
	mw := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "a", Limiter: hour(one, 10)},
		{Name: "b", Key: httplimit.Global, Limiter: hour(two, 10)},
		{Name: "c", Key: httplimit.Header("X-User"), Limiter: hour(one, 1)},
	}}
	codes := []int{}
	for range 3 {
		d, _ := mw.Check(request("GET", "/", "192.0.2.1:1", "X-User", "alice"))
		codes = append(codes, d.Status)
	}
	if !codesEqual(codes, 0, 429, 429) {
		t.Errorf("statuses %v", codes)
	}
	if got := remaining(one, "a", "192.0.2.1"); got != 9 {
		t.Errorf("rule a: %d remaining, want 9: a denial on its own store consumed it", got)
	}

	// A store that cannot decide several limits at once has every rule checked before
	// any is taken: a request that one rule denies takes nothing from the others.
	plain := takeOnly{two}
	mw = &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "p", Limiter: hour(plain, 10)},
		{Name: "q", Key: httplimit.Header("X-User"), Limiter: hour(plain, 1)},
	}}
	for range 3 {
		mw.Check(request("GET", "/", "192.0.2.1:1", "X-User", "alice"))
	}
	if got := remaining(two, "p", "192.0.2.1"); got != 9 {
		t.Errorf("rule p: %d remaining, want 9", got)
	}
}

func TestFailPolicy(t *testing.T) {
	closed := memorystore.New(nil)
	closed.Close()
	good := newStore(t)

	var mu sync.Mutex
	var events []ratelimit.Event
	var errs []error
	observe := ratelimit.ObserverFunc(func(e ratelimit.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	onError := func(r *http.Request, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }

	open := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "broken", Limiter: ratelimit.New(closed, ratelimit.GCRA, ratelimit.PerHour(1))},
			{Name: "working", Limiter: ratelimit.New(good, ratelimit.GCRA, ratelimit.PerHour(2))},
		},
		OnError:  onError,
		Observer: observe,
	}
	srv := serve(t, open)
	// FailOpen: the broken store's rule is skipped, the working one still enforced.
	if c := statuses(t, 3, srv.URL); !codesEqual(c, 200, 200, 429) {
		t.Errorf("fail open: %v", c)
	}
	mu.Lock()
	if len(errs) != 3 || !errors.Is(errs[0], ratelimit.ErrClosed) {
		t.Errorf("OnError heard %v, want 3 errors matching ErrClosed", errs)
	}
	failed := 0
	for _, e := range events {
		if e.Outcome == ratelimit.Failed {
			failed++
			if e.Rule != "broken" || e.KeyClass != "ip" || !errors.Is(e.Err, ratelimit.ErrClosed) {
				t.Errorf("event %+v", e)
			}
		}
	}
	if failed != 3 {
		t.Errorf("%d Failed events, want 3: %+v", failed, events)
	}
	mu.Unlock()

	shut := serve(t, &httplimit.Middleware{
		Limiter:      ratelimit.New(closed, ratelimit.GCRA, ratelimit.PerHour(1)),
		OnStoreError: ratelimit.FailClosed,
	})
	resp, body := do(t, "GET", shut.URL)
	if resp.StatusCode != 503 || !strings.Contains(body, `"status":503`) || strings.Contains(body, "closed") {
		t.Errorf("fail closed: %d %s, want 503 without internal detail", resp.StatusCode, body)
	}
}

func TestCostAboveCapacityIs413(t *testing.T) {
	store := newStore(t)
	mw := &httplimit.Middleware{Rules: []httplimit.Rule{{
		Name:    "bytes",
		Limiter: ratelimit.New(store, ratelimit.TokenBucket, ratelimit.Limit{Rate: 1000, Period: 1 << 40, Burst: 1000}),
		Cost:    httplimit.ContentLength(1000),
	}}}
	srv := serve(t, mw)
	post := func(n int) (*http.Response, string) {
		resp, err := http.Post(srv.URL, "text/plain", strings.NewReader(strings.Repeat("x", n)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := post(2000); resp.StatusCode != 413 || resp.Header.Get("Retry-After") != "" || !strings.Contains(body, "exceeds the capacity 1000") {
		t.Errorf("2000 bytes: %d %q Retry-After %q, want 413 and no Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if resp, _ := post(600); resp.StatusCode != 200 {
		t.Errorf("600 bytes: %d", resp.StatusCode)
	}
	if resp, _ := post(600); resp.StatusCode != 429 {
		t.Errorf("600 more bytes: %d, want 429", resp.StatusCode)
	}
	if resp, _ := post(400); resp.StatusCode != 200 {
		t.Errorf("the last 400 bytes: %d", resp.StatusCode)
	}
}

func TestMissingKeyPolicies(t *testing.T) {
	store := newStore(t)
	rule := func(p httplimit.MissingKeyPolicy) *httplimit.Middleware {
		return &httplimit.Middleware{Rules: []httplimit.Rule{{
			Name: "key", Key: httplimit.Header("X-API-Key"), KeyClass: "api-key", MissingKey: p,
			Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(1)),
		}}}
	}
	t.Run("fallback", func(t *testing.T) {
		srv := serve(t, rule(httplimit.MissingKeyFallback))
		// Anonymous requests are limited by client IP, apart from keyed ones.
		if c := statuses(t, 2, srv.URL); !codesEqual(c, 200, 429) {
			t.Errorf("anonymous: %v", c)
		}
		if c := statuses(t, 2, srv.URL, "X-API-Key", "k1"); !codesEqual(c, 200, 429) {
			t.Errorf("keyed: %v", c)
		}
		// An oversized key is malformed: it falls back too, to the exhausted IP budget.
		if c := statuses(t, 1, srv.URL, "X-API-Key", strings.Repeat("k", 5000)); !codesEqual(c, 429) {
			t.Errorf("oversized key: %v", c)
		}
		// With no client IP either, the request is rejected, never pooled.
		d, err := rule(httplimit.MissingKeyFallback).Check(request("GET", "/", "@"))
		if d.Status != 400 || !errors.Is(err, httplimit.ErrNoKey) {
			t.Errorf("no key, no IP: %d %v", d.Status, err)
		}
	})
	t.Run("reject", func(t *testing.T) {
		srv := serve(t, rule(httplimit.MissingKeyReject))
		resp, body := do(t, "GET", srv.URL)
		if resp.StatusCode != 400 || !strings.Contains(body, "X-Api-Key") {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("skip", func(t *testing.T) {
		srv := serve(t, rule(httplimit.MissingKeySkip))
		if c := statuses(t, 3, srv.URL); !codesEqual(c, 200, 200, 200) {
			t.Errorf("%v", c)
		}
	})
}

func TestKeyFuncs(t *testing.T) {
	type ctxKey struct{}
	r := request("GET", "/items/7", "192.0.2.1:1", "X-API-Key", " secret ")
	r = r.WithContext(contextWith(r, ctxKey{}, "alice"))
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", hello)

	tests := []struct {
		name string
		fn   httplimit.KeyFunc
		want string
	}{
		{"header", httplimit.Header("x-api-key"), "secret"},
		{"context", httplimit.ContextValue(ctxKey{}), "alice"},
		{"route", httplimit.Route(mux), "GET /items/{id}"},
		{"global", httplimit.Global, "*"},
		{"composite", httplimit.Composite(httplimit.ContextValue(ctxKey{}), httplimit.Route(mux)), "5:alice15:GET /items/{id}"},
	}
	for _, tt := range tests {
		if got, err := tt.fn(r); err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	bare := request("GET", "/nowhere", "192.0.2.1:1")
	for name, fn := range map[string]httplimit.KeyFunc{
		"header":    httplimit.Header("X-API-Key"),
		"context":   httplimit.ContextValue(ctxKey{}),
		"route":     httplimit.Route(mux),
		"composite": httplimit.Composite(httplimit.Global, httplimit.Header("X-API-Key")),
	} {
		if _, err := fn(bare); !errors.Is(err, httplimit.ErrNoKey) {
			t.Errorf("%s on a bare request: %v, want ErrNoKey", name, err)
		}
	}
}

// TestObserverEvents checks that events carry the rule, its key class and the key as the
// rule's key function gave it, without the namespace the middleware adds.
func TestObserverEvents(t *testing.T) {
	store := newStore(t)
	var mu sync.Mutex
	var got []string
	mw := &httplimit.Middleware{
		Rules: []httplimit.Rule{
			{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(5))},
			{Name: "user", Key: httplimit.Header("X-User"), KeyClass: "user", Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(1))},
		},
		Observer: ratelimit.ObserverFunc(func(e ratelimit.Event) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s/%s/%s/%v", e.Rule, e.KeyClass, e.Key, e.Outcome))
			mu.Unlock()
		}),
	}
	for range 2 {
		mw.Check(request("GET", "/", "192.0.2.1:1", "X-User", "alice"))
	}
	want := "ip/ip/192.0.2.1/allowed user/user/alice/allowed user/user/alice/denied"
	if strings.Join(got, " ") != want {
		t.Errorf("events %q, want %q", strings.Join(got, " "), want)
	}
}

func TestValidate(t *testing.T) {
	store := newStore(t)
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerHour(1))
	tests := map[string]*httplimit.Middleware{
		"no limiter":        {},
		"duplicate name":    {Limiter: lim, Rules: []httplimit.Rule{{Name: "a"}, {Name: "a", Pattern: "/x"}}},
		"default names":     {Limiter: lim, Rules: []httplimit.Rule{{}, {}}},
		"quote in name":     {Limiter: lim, Rules: []httplimit.Rule{{Name: `a"b`}}},
		"invalid pattern":   {Limiter: lim, Rules: []httplimit.Rule{{Pattern: "GET"}}},
		"conflict":          {Limiter: lim, Rules: []httplimit.Rule{{Name: "a", Pattern: "/a/{x}"}, {Name: "b", Pattern: "/a/{y}"}}},
		"excluded limited":  {Limiter: lim, Rules: []httplimit.Rule{{Pattern: "/a"}}, Exclude: []string{"/a"}},
		"invalid limit":     {Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{})},
		"invalid algorithm": {Limiter: ratelimit.New(store, 0, ratelimit.PerHour(1))},
		"name of 65 bytes":  {Limiter: lim, Rules: []httplimit.Rule{{Name: strings.Repeat("n", 65)}}},
		"fail error":        {Limiter: lim, OnStoreError: ratelimit.FailError},
	}
	for name, mw := range tests {
		if err := mw.Validate(); !errors.Is(err, httplimit.ErrConfig) {
			t.Errorf("%s: Validate() = %v, want ErrConfig", name, err)
		}
		d, err := mw.Check(request("GET", "/", "192.0.2.1:1"))
		if d.Status != 500 || err == nil {
			t.Errorf("%s: Check = %d %v, want 500", name, d.Status, err)
		}
	}
	ok := httplimit.Middleware{Limiter: lim, Rules: []httplimit.Rule{{Pattern: "GET /a/{x}"}, {Pattern: "GET /a/b"}, {}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid configuration: %v", err)
	}
}

func TestCheckAllocations(t *testing.T) {
	store := newStore(t)
	big := ratelimit.Limit{Rate: 1 << 30, Period: 1 << 40}
	lim := func(alg ratelimit.Algorithm) *ratelimit.Limiter { return ratelimit.New(store, alg, big) }
	one := &httplimit.Middleware{Limiter: lim(ratelimit.GCRA)}
	three := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: lim(ratelimit.GCRA)},
		{Name: "user", Key: httplimit.Header("X-User"), Limiter: lim(ratelimit.TokenBucket)},
		{Name: "all", Key: httplimit.Global, Limiter: lim(ratelimit.FixedWindow)},
	}}
	routed := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "ip", Limiter: lim(ratelimit.GCRA)},
		{Name: "route", Pattern: "GET /api/{id}", Key: httplimit.Global, Limiter: lim(ratelimit.TokenBucket)},
	}}
	// What http.ServeMux itself allocates to match the same request: wildcard values.
	mux := http.NewServeMux()
	mux.Handle("GET /api/{id}", hello)
	mux.Handle("/", hello)
	r := request("GET", "/api/x", "[2001:db8::1]:1", "X-User", "alice")
	muxAllocs := testing.AllocsPerRun(200, func() { mux.Handler(r) })

	for _, tt := range []struct {
		name string
		mw   *httplimit.Middleware
		max  float64
	}{
		{"one rule", one, 1},      // the key
		{"three rules", three, 3}, // three keys
		{"routed", routed, 2 + muxAllocs},
	} {
		if d, err := tt.mw.Check(r); err != nil || !d.Allowed {
			t.Fatalf("%s: %+v %v", tt.name, d, err)
		}
		if n := testing.AllocsPerRun(200, func() { tt.mw.Check(r) }); n > tt.max {
			t.Errorf("%s: Check allocates %v times, want at most %v", tt.name, n, tt.max)
		}
	}
}

func TestHeaderStyles(t *testing.T) {
	store := newStore(t)
	for _, tt := range []struct {
		style               httplimit.HeaderStyle
		ietf, xrfc, draft03 bool
	}{
		{httplimit.HeadersIETF, true, false, false},
		{httplimit.HeadersLegacy, false, true, false},
		{httplimit.HeadersBoth, true, true, false},
		{httplimit.HeadersNone, false, false, false},
		{httplimit.HeadersDraft03, false, false, true},
	} {
		if got, err := httplimit.ParseHeaderStyle(tt.style.String()); got != tt.style || err != nil {
			t.Errorf("ParseHeaderStyle(%q) = %v, %v; want %v", tt.style.String(), got, err, tt.style)
		}
		mw := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.TokenBucket, ratelimit.Limit{Rate: 100, Period: 60e9, Burst: 10}), Headers: tt.style}
		w := httptest.NewRecorder()
		mw.Handler(hello).ServeHTTP(w, request("GET", "/", fmt.Sprintf("192.0.2.%d:1", tt.style+1)))
		h := w.Result().Header
		if got := h.Get("RateLimit-Policy") != ""; got != tt.ietf {
			t.Errorf("style %v: RateLimit-Policy %q", tt.style, h.Get("RateLimit-Policy"))
		}
		if tt.ietf {
			// Burst 10 refilled at 100/min: 6 s from empty; one taken refills in 0.6 s.
			if h.Get("RateLimit-Policy") != `"default";q=10;w=6` || h.Get("RateLimit") != `"default";r=9;t=1` {
				t.Errorf("style %v: %q %q", tt.style, h.Get("RateLimit-Policy"), h.Get("RateLimit"))
			}
		}
		for _, set := range []struct {
			prefix string
			want   bool
		}{{"X-RateLimit-", tt.xrfc}, {"RateLimit-", tt.draft03}} {
			if got := h.Get(set.prefix+"Limit") != ""; got != set.want {
				t.Errorf("style %v: %sLimit %q", tt.style, set.prefix, h.Get(set.prefix+"Limit"))
			}
			if set.want && (h.Get(set.prefix+"Limit") != "10" || h.Get(set.prefix+"Remaining") != "9" || h.Get(set.prefix+"Reset") != "1") {
				t.Errorf("style %v: %s* %v", tt.style, set.prefix, h)
			}
		}
	}
	if _, err := httplimit.ParseHeaderStyle("IETF"); err == nil {
		t.Error(`ParseHeaderStyle("IETF"): no error; the words are exact`)
	}
}

func TestCustomDenyHandler(t *testing.T) {
	store := newStore(t)
	mw := &httplimit.Middleware{
		Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(1)),
		DenyHandler: func(w http.ResponseWriter, r *http.Request, d *httplimit.Decision) {
			w.WriteHeader(d.Status)
			fmt.Fprintf(w, "slow down for %v", d.RetryAfter.Round(60e9))
		},
	}
	srv := serve(t, mw)
	do(t, "GET", srv.URL)
	resp, body := do(t, "GET", srv.URL)
	if resp.StatusCode != 429 || !strings.HasPrefix(body, "slow down for ") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestProxyHeaderAnyCase(t *testing.T) {
	store := newStore(t)
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := request("GET", "/", "10.0.0.1:1", "Forwarded", "for=203.0.113.9")
	c := &httplimit.ClientIP{TrustedProxies: proxies, ProxyHeader: "forwarded"}
	if a, err := c.Addr(r); err != nil || a.String() != "203.0.113.9" {
		t.Errorf("ClientIP.Addr: %v %v", a, err)
	}
	mw := &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerHour(5)), ClientIP: *c}
	if _, err := mw.Check(r); err != nil {
		t.Fatal(err)
	}
	res, err := store.Take(t.Context(), "7:default:k:203.0.113.9", ratelimit.FixedWindow, ratelimit.PerHour(5), 0)
	if err != nil || res.Remaining != 4 {
		t.Errorf("the middleware did not key by the forwarded address: %+v %v", res, err)
	}
}
