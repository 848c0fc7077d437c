package httplimit_test

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/adaptive"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// TestTransportThrottle sends 100 requests per second through a Transport with a
// Throttle to a server that admits 10 per second: it rejects 90% of what an unthrottled
// client sends. Once the window has filled, the throttled client sends about K = 2 times
// what the server accepts and rejects the rest locally, while the server still accepts
// its 10 per second.
func TestTransportThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memorystore.New(nil)
		defer store.Close()
		server := &httplimit.Middleware{Rules: []httplimit.Rule{{
			Name:    "backend",
			Limiter: ratelimit.New(store, ratelimit.GCRA, ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 10}),
			Key:     func(*http.Request) (string, error) { return "all", nil },
		}}}
		var sent, accepted int
		s := startPipeServer(t, countingMiddleware(&sent, server.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { accepted++ }))))
		throttle := &adaptive.Throttle{K: 2, Window: 10 * time.Second}
		client := &http.Client{Transport: s.transport}

		var local, total int
		measure := func(d time.Duration) {
			sent, accepted, local, total = 0, 0, 0, 0
			end := time.Now().Add(d)
			for time.Now().Before(end) {
				total++
				resp, err := client.Get(pipeURL)
				switch {
				case errors.Is(err, adaptive.ErrThrottled):
					local++
				case err != nil:
					t.Fatal(err)
				default:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		measure(10 * time.Second)
		if accepted < 95 || accepted > 110 || sent != total {
			t.Fatalf("unthrottled, in 10s: %d attempts, %d sent, %d accepted, want 1000, 1000, ~100", total, sent, accepted)
		}
		client.Transport = &httplimit.Transport{Base: s.transport, Throttle: throttle}
		measure(20 * time.Second) // fill the window
		measure(30 * time.Second)
		t.Logf("in 30s: %d attempts, %d rejected locally, %d sent, %d accepted (%.2f sent per accepted; p = %.2f)",
			total, local, sent, accepted, float64(sent)/float64(accepted), throttle.RejectProbability())
		if accepted < 270 || accepted > 310 {
			t.Errorf("server accepted %d in 30s, want about 300: throttling must not starve it", accepted)
		}
		if ratio := float64(sent) / float64(accepted); ratio < 1.6 || ratio > 2.5 {
			t.Errorf("sent %d for %d accepted (%.2f), want about K = 2 times", sent, accepted, ratio)
		}
		if local+sent != total {
			t.Errorf("%d rejected locally + %d sent != %d attempts", local, sent, total)
		}
	})
}

func countingMiddleware(n *int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { *n++; next.ServeHTTP(w, r) })
}
