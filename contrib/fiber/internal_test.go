package fiberlimit

import (
	"errors"
	"net/http"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"
)

// TestUnreadableURI: a request URI net/url cannot parse is answered 400 by the
// DenyHandler, with the fiber.Ctx at hand, and no rule is consulted.
func TestUnreadableURI(t *testing.T) {
	store := memorystore.New(nil)
	defer store.Close()
	var got error
	var hadCtx bool
	m := &httplimit.Middleware{
		Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(1)),
		OnError: func(r *http.Request, err error) {
			got = err
			_, hadCtx = Context(r)
		},
	}
	app := fiber.New()
	h := New(m)
	var fctx fasthttp.RequestCtx
	fctx.Request.Header.SetMethod(http.MethodGet)
	fctx.Request.Header.SetRequestURI("/a%zz")
	c := app.AcquireCtx(&fctx)
	defer app.ReleaseCtx(c)
	if err := h(c); err != nil {
		t.Fatalf("handler returned %v", err)
	}
	if s := fctx.Response.StatusCode(); s != http.StatusBadRequest {
		t.Errorf("status %d, want 400", s)
	}
	if ct := string(fctx.Response.Header.ContentType()); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if !errors.Is(got, httplimit.ErrNoKey) || !hadCtx {
		t.Errorf("OnError got %v (fiber.Ctx: %v), want an error wrapping httplimit.ErrNoKey and the fiber.Ctx", got, hadCtx)
	}
}
