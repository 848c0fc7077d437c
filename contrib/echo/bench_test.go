package echolimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	echolimit "github.com/go-ratelimit/ratelimit/contrib/echo"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
	"github.com/labstack/echo/v4"
)

// BenchmarkMiddleware measures an allowed request through an echo instance, in
// process, from 4096 client addresses: bare, and behind echolimit.New.
func BenchmarkMiddleware(b *testing.B) {
	store := memorystore.New(nil)
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 1 << 30, Period: 1e9})
	reqs := make([]*http.Request, 4096)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/hello", nil)
		reqs[i].RemoteAddr = "10." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255) + ".1:1234"
	}
	for _, bc := range []struct {
		name string
		mw   echo.MiddlewareFunc
	}{
		{"bare", nil},
		{"echolimit", echolimit.New(&httplimit.Middleware{Limiter: lim})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := echo.New()
			if bc.mw != nil {
				e.Use(bc.mw)
			}
			e.GET("/hello", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := httptest.NewRecorder()
				i := 0
				for pb.Next() {
					clear(w.Header())
					e.ServeHTTP(w, reqs[i%len(reqs)])
					i++
				}
			})
		})
	}
}
