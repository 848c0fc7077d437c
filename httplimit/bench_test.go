package httplimit_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// discardWriter is the cheapest ResponseWriter, so that the benchmark measures handlers,
// not response recording.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHandler compares a bare hello-world handler with the same handler behind the
// middleware: the allowed path, the memory store, one rule per client IP, 10,000 client
// addresses in turn.
func BenchmarkHandler(b *testing.B) {
	const clients = 10_000
	reqs := make([]*http.Request, clients)
	for i := range reqs {
		reqs[i] = request("GET", "/hello", fmt.Sprintf("10.%d.%d.%d:4711", i>>16&255, i>>8&255, i&255))
	}
	store := newStore(b)
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 1 << 30, Period: 1 << 40})
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", hello},
		{"middleware", (&httplimit.Middleware{Limiter: lim}).Handler(hello)},
		{"middleware-legacy-headers", (&httplimit.Middleware{Limiter: lim, Headers: httplimit.HeadersLegacy}).Handler(hello)},
		{"middleware-no-headers", (&httplimit.Middleware{Limiter: lim, Headers: httplimit.HeadersNone}).Handler(hello)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: make(http.Header)}
				for pb.Next() {
					clear(w.h)
					bb.h.ServeHTTP(w, reqs[next.Add(1)%clients])
				}
			})
		})
	}
}

// BenchmarkCheck measures the decision alone: one rule keyed by the peer address, the
// same behind a trusted proxy (X-Forwarded-For), and three rules on one store.
func BenchmarkCheck(b *testing.B) {
	const clients = 10_000
	reqs := make([]*http.Request, clients)
	for i := range reqs {
		reqs[i] = request("GET", "/api/items", fmt.Sprintf("10.%d.%d.%d:4711", i>>16&255, i>>8&255, i&255), "X-User", fmt.Sprint("user", i%100))
	}
	proxied := make([]*http.Request, clients)
	for i := range proxied {
		proxied[i] = request("GET", "/api/items", "127.0.0.1:4711", "X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	store := newStore(b)
	big := ratelimit.Limit{Rate: 1 << 30, Period: 1 << 40}
	for _, bb := range []struct {
		name string
		mw   *httplimit.Middleware
	}{
		{"one-rule", &httplimit.Middleware{Limiter: ratelimit.New(store, ratelimit.GCRA, big)}},
		{"one-rule-behind-proxy", &httplimit.Middleware{
			Limiter:  ratelimit.New(store, ratelimit.GCRA, big),
			ClientIP: httplimit.ClientIP{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		}},
		{"three-rules", &httplimit.Middleware{Rules: []httplimit.Rule{
			{Name: "ip", Limiter: ratelimit.New(store, ratelimit.GCRA, big)},
			{Name: "user", Key: httplimit.Header("X-User"), Limiter: ratelimit.New(store, ratelimit.GCRA, big)},
			{Name: "all", Key: httplimit.Global, Limiter: ratelimit.New(store, ratelimit.FixedWindow, big)},
		}}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rs := reqs
				if strings.HasSuffix(bb.name, "proxy") {
					rs = proxied
				}
				for pb.Next() {
					bb.mw.Check(rs[next.Add(1)%clients])
				}
			})
		})
	}
}
