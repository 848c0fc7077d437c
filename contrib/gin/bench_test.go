package ginlimit_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/go-ratelimit/ratelimit"
	ginlimit "github.com/go-ratelimit/ratelimit/contrib/gin"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// BenchmarkMiddleware measures an allowed request through a gin engine, in process,
// from 4096 client addresses: bare, behind ginlimit.New, and behind httplimit's own
// Handler in the glue one would write without this package, for comparison.
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
		mw   gin.HandlerFunc
	}{
		{"bare", nil},
		{"ginlimit", ginlimit.New(&httplimit.Middleware{Limiter: lim})},
		{"httplimit.Handler", handlerGlue(&httplimit.Middleware{Limiter: lim})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			gin.SetMode(gin.ReleaseMode)
			e := gin.New()
			if bc.mw != nil {
				e.Use(bc.mw)
			}
			e.GET("/hello", func(c *gin.Context) { c.Status(http.StatusNoContent) })
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

// handlerGlue runs m.Handler inside gin, the way one would without this package.
func handlerGlue(m *httplimit.Middleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { passed = true })).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}
