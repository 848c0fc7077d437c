package fiberlimit_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	fiberlimit "github.com/go-ratelimit/ratelimit/contrib/fiber"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
	"github.com/gofiber/fiber/v3"
)

// raw sends a request written by hand, so that its request line reaches the server
// as written, and returns the status code.
func raw(t *testing.T, base, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	var proto string
	var status int
	if _, err := fmt.Fscan(conn, &proto, &status); err != nil {
		t.Fatal(err)
	}
	return status
}

// TestUncleanPath: a path spelled differently is limited as the path it stands for,
// as httplimit does for net/http.
func TestUncleanPath(t *testing.T) {
	m := &httplimit.Middleware{Rules: []httplimit.Rule{{
		Pattern: "GET /api/{id}", Limiter: ratelimit.New(adaptertest.NewStore(t), ratelimit.GCRA, ratelimit.PerMinute(1)),
	}}}
	base := newServer(t, m)
	for i, step := range []struct {
		target string
		want   int
	}{{"/api/1", 200}, {"//api/2", 429}, {"/x/../api/3", 429}, {"/api/./4", 429}, {"/hello", 200}} {
		req := "GET " + step.target + " HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
		if got := raw(t, base, req); got != step.want {
			t.Errorf("step %d: GET %s = %d, want %d", i+1, step.target, got, step.want)
		}
	}
}

// TestBody: a CostFunc reads the request's size and body; the handler after it still
// reads the whole body.
func TestBody(t *testing.T) {
	store := adaptertest.NewStore(t)
	var mu sync.Mutex
	var read []string
	m := &httplimit.Middleware{Rules: []httplimit.Rule{
		{Name: "bytes", Cost: httplimit.ContentLength(0), Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerMinute(8))},
		{Name: "read", Limiter: ratelimit.New(store, ratelimit.FixedWindow, ratelimit.PerMinute(100)),
			Cost: func(r *http.Request) (int, error) {
				b, err := io.ReadAll(r.Body)
				mu.Lock()
				read = append(read, string(b))
				mu.Unlock()
				return 1, err
			}},
	}}
	app := fiber.New()
	app.Use(fiberlimit.New(m))
	app.Post("/upload", func(c fiber.Ctx) error { return c.Send(c.Body()) })
	base := serve(t, app)

	post := func(body string) adaptertest.Response {
		t.Helper()
		resp, err := http.Post(base+"/upload", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}
	if r := post("hello"); r.Status != 200 || r.Body != "hello" {
		t.Errorf("5 bytes of 8: %d %q, want 200 and the body echoed", r.Status, r.Body)
	}
	if r := post("world"); r.Status != 429 {
		t.Errorf("5 more bytes: %d, want 429", r.Status)
	}
	if r := post("123456789"); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("9 bytes, above the capacity: %d, want 413", r.Status)
	}
	if r := adaptertest.Do(t, http.MethodGet, base+"/upload"); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("GET without a body: %d, want 405 from fiber, passed by the limiter at cost 0", r.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	// The 9-byte request stops at the first rule; the GET has an empty body.
	if got := strings.Join(read, ","); got != "hello,world," {
		t.Errorf("bodies the CostFunc read: %q", got)
	}
}

// TestTrustedProxyHeaders: repeated X-Forwarded-For fields from a trusted peer reach
// httplimit as net/http would give them, and the rightmost untrusted address is the
// client.
func TestTrustedProxyHeaders(t *testing.T) {
	m := &httplimit.Middleware{
		Limiter: ratelimit.New(adaptertest.NewStore(t), ratelimit.GCRA, ratelimit.PerMinute(1)),
		ClientIP: httplimit.ClientIP{TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
		}},
	}
	base := newServer(t, m)
	for i, step := range []struct {
		xff  []string
		want int
	}{
		{[]string{"198.51.100.1", "10.0.0.2"}, 200},
		{[]string{"203.0.113.9, 198.51.100.1", "10.0.0.3"}, 429}, // the client is still 198.51.100.1
		{[]string{"198.51.100.2"}, 200},
	} {
		var h []string
		for _, v := range step.xff {
			h = append(h, "X-Forwarded-For: "+v)
		}
		if got := adaptertest.Do(t, http.MethodGet, base+"/hello", h...).Status; got != step.want {
			t.Errorf("step %d: X-Forwarded-For %q: %d, want %d", i+1, step.xff, got, step.want)
		}
	}
}
