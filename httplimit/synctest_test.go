package httplimit_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// TestRetryAfterIsEnough checks, in fake time and over real HTTP, that a client that
// waits exactly Retry-After seconds is admitted, for limits whose periods are not whole
// seconds, and that the RateLimit header's t never exceeds Retry-After.
func TestRetryAfterIsEnough(t *testing.T) {
	for _, tt := range []struct {
		alg   ratelimit.Algorithm
		limit ratelimit.Limit
	}{
		{ratelimit.GCRA, ratelimit.Limit{Rate: 2, Period: 3 * time.Second}},
		{ratelimit.TokenBucket, ratelimit.Limit{Rate: 3, Period: 2500 * time.Millisecond, Burst: 2}},
		{ratelimit.FixedWindow, ratelimit.Limit{Rate: 3, Period: 1500 * time.Millisecond}},
		{ratelimit.SlidingWindowLog, ratelimit.Limit{Rate: 2, Period: 700 * time.Millisecond}},
		{ratelimit.SlidingWindowCounter, ratelimit.Limit{Rate: 4, Period: 2 * time.Second}},
		{ratelimit.LeakyBucket, ratelimit.Limit{Rate: 5, Period: 4 * time.Second, Burst: 1}},
	} {
		t.Run(tt.alg.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := memorystore.New(nil)
				defer store.Close()
				mw := &httplimit.Middleware{Limiter: ratelimit.New(store, tt.alg, tt.limit)}
				s := startPipeServer(t, mw.Handler(hello))
				client := &http.Client{Transport: s.transport}
				denials := 0
				for range 40 {
					resp, err := client.Get(pipeURL)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					_, _, reset := rateLimit(t, resp.Header)
					if resp.StatusCode == http.StatusOK {
						time.Sleep(100 * time.Millisecond)
						continue
					}
					denials++
					secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
					if err != nil || secs < 1 || int64(secs) < reset {
						t.Fatalf("Retry-After %q with RateLimit %q", resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
					}
					time.Sleep(time.Duration(secs) * time.Second)
					resp, err = client.Get(pipeURL)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("after waiting Retry-After %ds: %d", secs, resp.StatusCode)
					}
				}
				if denials == 0 {
					t.Fatal("never denied: the test proves nothing")
				}
			})
		})
	}
}
