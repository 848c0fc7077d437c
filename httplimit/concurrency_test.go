package httplimit_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit/concurrency"
	"github.com/go-ratelimit/ratelimit/httplimit"
)

// workerPool simulates a server with a fixed number of workers, each serving one request
// for service; requests beyond the workers wait for one. Its knee is the number of
// workers: beyond it, more concurrency only adds latency.
type workerPool struct {
	mu      sync.Mutex
	workers chan struct{}
	service time.Duration
}

func (p *workerPool) resize(n int) {
	p.mu.Lock()
	p.workers = make(chan struct{}, n)
	p.mu.Unlock()
}

func (p *workerPool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	workers := p.workers
	p.mu.Unlock()
	workers <- struct{}{}
	time.Sleep(p.service)
	<-workers
	io.WriteString(w, "ok\n")
}

// closedLoopLimiter is the limiter of the closed-loop test: Vegas with its queue bounds
// tightened from Netflix's defaults (3 and 6 × log10(limit)) to 1 and 2 × log10(limit),
// which keeps the limit within a quarter of the knee for knees from 10 up.
func closedLoopLimiter(t *testing.T) *concurrency.Limiter {
	t.Helper()
	l, err := concurrency.New(&concurrency.Options{
		Algorithm:    &concurrency.Vegas{Alpha: concurrency.Log10(1), Beta: concurrency.Log10(2), Threshold: concurrency.Log10(0.5)},
		InitialLimit: 5,
		MaxLimit:     200,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestConcurrencyClosedLoop runs 100 closed-loop clients against a real net/http server
// (over in-memory connections, in fake time) whose handler is a pool of 20 workers of
// 20 ms each, a knee of 20 and a capacity of 1000 requests per second. A denied client
// waits 100 ms and tries again. After 4 s the pool shrinks to 10 workers.
//
// It asserts that the limit settles within ±25% of the knee within 2 s and stays there,
// that goodput is at least 90% of the knee's, that the p99 latency of admitted requests
// stays under twice the service time plus a margin, and the same after the knee drops.
func TestConcurrencyClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const service = 20 * time.Millisecond
		pool := &workerPool{service: service}
		pool.resize(20)
		lim := closedLoopLimiter(t)
		h := (&httplimit.Concurrency{Limiter: lim}).Handler(pool)
		s := startPipeServer(t, h)
		s.transport.MaxIdleConnsPerHost = 200
		client := &http.Client{Transport: s.transport}

		start := time.Now()
		const phase = 4 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 2*phase)
		defer cancel()
		type sample struct {
			at      time.Duration
			latency time.Duration
		}
		var mu sync.Mutex
		var served []sample
		var denied int
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				for ctx.Err() == nil {
					t0 := time.Now()
					req, _ := http.NewRequestWithContext(ctx, "GET", pipeURL, nil)
					resp, err := client.Do(req)
					if err != nil {
						return // the run ended
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					if resp.StatusCode == http.StatusOK {
						served = append(served, sample{time.Since(start), time.Since(t0)})
					} else if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "1" {
						denied++
					} else {
						t.Errorf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
					}
					mu.Unlock()
					if resp.StatusCode != http.StatusOK {
						time.Sleep(100 * time.Millisecond)
					}
				}
			})
		}
		var limits []int // every 10 ms
		wg.Go(func() {
			for ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
				limits = append(limits, lim.Limit())
				if len(limits) == int(phase/(10*time.Millisecond)) {
					pool.resize(10)
				}
			}
		})
		wg.Wait()

		check := func(name string, knee int, from time.Duration) {
			lo, hi := knee*3/4, knee*5/4
			first, last := int(from/(10*time.Millisecond)), int((from+phase)/(10*time.Millisecond))-1
			settled := -1
			for i := last; i >= first; i-- {
				if limits[i] < lo || limits[i] > hi {
					break
				}
				settled = i
			}
			settle := time.Duration(settled-first+1) * 10 * time.Millisecond
			var lat []time.Duration
			for _, s := range served {
				if s.at >= from+phase/2 && s.at < from+phase {
					lat = append(lat, s.latency)
				}
			}
			slices.Sort(lat)
			goodput := float64(len(lat)) / (phase / 2).Seconds()
			p99 := lat[len(lat)*99/100]
			capacity := float64(knee) / service.Seconds()
			t.Logf("%s: settled in [%d, %d] after %v; goodput %.0f/s (%.0f%% of %.0f/s); p99 %v; limit at end %d",
				name, lo, hi, settle, goodput, 100*goodput/capacity, capacity, p99, limits[last])
			if settled < 0 || settle > 2*time.Second {
				t.Errorf("%s: the limit did not settle within [%d, %d] within 2s: %v", name, lo, hi, limits[first:first+300])
			}
			if goodput < 0.9*capacity {
				t.Errorf("%s: goodput %.0f/s, want at least 90%% of %.0f/s", name, goodput, capacity)
			}
			if p99 > 2*service+5*time.Millisecond {
				t.Errorf("%s: p99 latency %v, want at most %v", name, p99, 2*service+5*time.Millisecond)
			}
		}
		check("knee 20", 20, 0)
		check("knee 10", 10, phase)
		if denied == 0 {
			t.Error("no request was denied: the clients did not overload the server")
		}
	})
}

// TestConcurrencyAnswersAndClassifies checks the 503 answer of a request over the
// limit, and what the limiter hears of admitted requests: 5xx as drops, a panic as a drop
// that frees its slot, other statuses as successes.
func TestConcurrencyAnswersAndClassifies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim, err := concurrency.New(&concurrency.Options{Algorithm: concurrency.Fixed(1), InitialLimit: 1})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/block":
				<-release
			case "/fail":
				w.WriteHeader(http.StatusBadGateway)
			case "/panic":
				panic(http.ErrAbortHandler)
			}
		})
		s := startPipeServer(t, (&httplimit.Concurrency{Limiter: lim, RetryAfter: 1500 * time.Millisecond}).Handler(app))
		client := &http.Client{Transport: s.transport}
		get := func(path string) (*http.Response, error) {
			resp, err := client.Get(pipeURL + path)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return resp, err
		}
		go get("/block")
		synctest.Wait()
		resp, err := get("/")
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("over the limit: %v %v, want 503 with Retry-After 2 and a problem body", resp, err)
		}
		close(release)
		synctest.Wait()
		for _, path := range []string{"/fail", "/"} {
			get(path)
		}
		client.Post(pipeURL+"/panic", "text/plain", nil) // a POST, which the client does not retry

		st := lim.Stats()
		if st.Dropped != 2 || st.InFlight != 0 || st.Rejected != 1 {
			t.Errorf("Stats = %+v, want 2 dropped (502, panic), 0 in flight, 1 rejected", st)
		}
	})
}
