package adaptertest_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/adaptertest"
)

// param matches a ":name" parameter of a Route's path.
var param = regexp.MustCompile(`:(\w+)`)

// TestNetHTTP runs the suite against httplimit's own Handler around a ServeMux: the
// reference every adapter is held to passes it.
func TestNetHTTP(t *testing.T) {
	adaptertest.Run(t, adaptertest.Server{
		Name: "net/http",
		Start: func(t *testing.T, m *httplimit.Middleware, routes []adaptertest.Route) string {
			if m == nil {
				// The adapters answer a nil Middleware as one with no limiter; Handler
				// needs a Middleware.
				m = &httplimit.Middleware{}
			}
			mux := http.NewServeMux()
			for _, r := range routes {
				mux.HandleFunc(r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"), func(w http.ResponseWriter, _ *http.Request) {
					w.Write([]byte("ok " + r.Path))
				})
			}
			srv := httptest.NewServer(m.Handler(mux))
			t.Cleanup(srv.Close)
			return srv.URL
		},
		HasContext: func(*http.Request) bool { return true }, // net/http has no context of its own
		Unrouted:   []int{http.StatusNotFound, http.StatusMethodNotAllowed},
	})
}
