package fiberlimit

import (
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/adaptor"
	"github.com/valyala/fasthttp"
)

// newRequestCtxs returns n fasthttp requests for GET /api/items/42 with the header
// fields of a typical browser request, each from its own client address.
func newRequestCtxs(n int) []*fasthttp.RequestCtx {
	out := make([]*fasthttp.RequestCtx, n)
	for i := range out {
		var req fasthttp.Request
		req.Header.SetMethod(http.MethodGet)
		req.SetRequestURI("/api/items/42?page=2")
		req.Header.SetHost("example.com")
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Accept-Language", "en-GB,en;q=0.5")
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		req.Header.Set("X-Api-Key", "k-"+strconv.Itoa(i))
		req.Header.Set("Cookie", "session=0123456789abcdef")
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 40000}, nil)
		out[i] = ctx
	}
	return out
}

// BenchmarkConvert measures building the *http.Request a Middleware decides on from a
// fiber.Ctx: this package's conversion, and fiber's adaptor.ConvertRequest (which
// fasthttpadaptor implements) given the same context. "none" measures acquiring and
// releasing the fiber.Ctx, which every case includes.
func BenchmarkConvert(b *testing.B) {
	app := fiber.New()
	ctxs := newRequestCtxs(64)
	for _, bc := range []struct {
		name    string
		convert func(fiber.Ctx) (*http.Request, error)
	}{
		{"none", func(fiber.Ctx) (*http.Request, error) { return nil, nil }}, // acquiring the fiber.Ctx
		{"fiberlimit", newRequest},
		{"adaptor.ConvertRequest", func(c fiber.Ctx) (*http.Request, error) {
			r, err := adaptor.ConvertRequest(c, false)
			if err != nil {
				return nil, err
			}
			return r.WithContext(c.Context()), nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := app.AcquireCtx(ctxs[i%len(ctxs)])
				if _, err := bc.convert(c); err != nil {
					b.Fatal(err)
				}
				app.ReleaseCtx(c)
				i++
			}
		})
	}
}

// BenchmarkMiddleware measures an allowed request through a fiber app, in process,
// from 4096 client addresses: bare; behind New; and behind httplimit's own Handler
// through adaptor.HTTPMiddleware, the generic way to run net/http middleware in fiber.
func BenchmarkMiddleware(b *testing.B) {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 1 << 30, Period: 1e9})
	ctxs := newRequestCtxs(4096)
	for _, bc := range []struct {
		name string
		mw   fiber.Handler
	}{
		{"bare", nil},
		{"fiberlimit", New(&httplimit.Middleware{Limiter: lim})},
		{"adaptor.HTTPMiddleware", adaptor.HTTPMiddleware((&httplimit.Middleware{Limiter: lim}).Handler)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			app := fiber.New()
			if bc.mw != nil {
				app.Use(bc.mw)
			}
			app.Get("/api/items/:id", func(c fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) })
			h := app.Handler()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ctx := ctxs[i%len(ctxs)]
				ctx.Response.Reset()
				h(ctx)
				if ctx.Response.StatusCode() != http.StatusNoContent {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
				i++
			}
		})
	}
}
