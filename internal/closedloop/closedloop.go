// Package closedloop runs the closed-loop scenario adaptive concurrency limiters are
// judged on: closed-loop clients against a real net/http server whose handler is a pool
// of workers, the knee, beyond which more concurrency only adds latency; the knee
// changes between phases. It runs over in-memory connections and must run inside a
// testing/synctest bubble, so that its simulated latencies are exact and its results the
// same on a loaded machine as on an idle one.
package closedloop

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config describes a run.
type Config struct {
	Clients int           // closed-loop clients; each sends its next request when the last ends
	Service time.Duration // the time a worker spends on a request
	Knees   []int         // the workers of each phase
	Phase   time.Duration // the length of each phase
	Backoff time.Duration // a client's wait after a refused request
	Band    float64       // the settling band: the limit is settled within knee × (1 ± Band)
	Sample  time.Duration // how often the limit is sampled; default 10 ms

	// Jitter spreads each service time uniformly over Service × [1 − Jitter, 1 + Jitter],
	// from a fixed seed. Default 0: every request takes Service.
	Jitter float64
}

// Phase is what one phase measured.
type Phase struct {
	Knee int

	// Settle is the time from the phase's start after which the limit stayed within
	// the band until the phase's end; negative when it was outside at the end.
	Settle time.Duration

	// Goodput is the rate of requests served in the phase's second half, per second;
	// Capacity the knee's, Knee / Service.
	Goodput, Capacity float64

	// P50 and P99 are latencies of the served requests of the second half, as the
	// clients measured them.
	P50, P99 time.Duration

	// Refused counts the requests refused during the phase.
	Refused int

	// Limits are the limit's samples during the phase.
	Limits []int
}

// Run runs the scenario against wrap(pool), the pool's handler guarded by the limiter
// under test, whose limit limit reports. Requests answered 200 are served; any other
// status is a refusal.
func Run(cfg Config, wrap func(http.Handler) http.Handler, limit func() int) []Phase {
	if cfg.Sample <= 0 {
		cfg.Sample = 10 * time.Millisecond
	}
	pool := &workerPool{service: cfg.Service, jitter: cfg.Jitter, rnd: rand.New(rand.NewPCG(1, 2))}
	pool.resize(cfg.Knees[0])
	l := newPipeListener()
	srv := &http.Server{Handler: wrap(pool)}
	go srv.Serve(l)
	tr := &http.Transport{DialContext: l.dial, MaxIdleConnsPerHost: cfg.Clients}
	defer func() {
		// Let the handlers of requests whose clients gave up at the end finish, so no
		// goroutine outlives the run.
		tr.CloseIdleConnections()
		srv.Shutdown(context.Background())
	}()
	client := &http.Client{Transport: tr}

	start := time.Now()
	total := time.Duration(len(cfg.Knees)) * cfg.Phase
	ctx, cancel := context.WithTimeout(context.Background(), total)
	defer cancel()
	type served struct{ at, latency time.Duration }
	var mu sync.Mutex
	var log []served
	var refusals []time.Duration
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://closedloop.test/", nil)
				resp, err := client.Do(req)
				if err != nil {
					return // the run ended
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == http.StatusOK {
					log = append(log, served{time.Since(start), time.Since(t0)})
				} else {
					refusals = append(refusals, time.Since(start))
				}
				mu.Unlock()
				if resp.StatusCode != http.StatusOK {
					time.Sleep(cfg.Backoff)
				}
			}
		})
	}
	var limits []int
	perPhase := int(cfg.Phase / cfg.Sample)
	wg.Go(func() {
		for ctx.Err() == nil {
			time.Sleep(cfg.Sample)
			limits = append(limits, limit())
			if n := len(limits); n%perPhase == 0 && n/perPhase < len(cfg.Knees) {
				pool.resize(cfg.Knees[n/perPhase])
			}
		}
	})
	wg.Wait()

	var out []Phase
	for i, knee := range cfg.Knees {
		from := time.Duration(i) * cfg.Phase
		p := Phase{Knee: knee, Capacity: float64(knee) / cfg.Service.Seconds(), Settle: -1}
		first, last := i*perPhase, min((i+1)*perPhase, len(limits))
		p.Limits = limits[first:last]
		lo, hi := float64(knee)*(1-cfg.Band), float64(knee)*(1+cfg.Band)
		for j := last - 1; j >= first; j-- {
			if v := float64(limits[j]); v < lo || v > hi {
				break
			}
			p.Settle = time.Duration(j-first) * cfg.Sample
		}
		var lat []time.Duration
		for _, s := range log {
			if s.at >= from+cfg.Phase/2 && s.at < from+cfg.Phase {
				lat = append(lat, s.latency)
			}
		}
		for _, at := range refusals {
			if at >= from && at < from+cfg.Phase {
				p.Refused++
			}
		}
		slices.Sort(lat)
		p.Goodput = float64(len(lat)) / (cfg.Phase / 2).Seconds()
		if len(lat) > 0 {
			p.P50, p.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
		}
		out = append(out, p)
	}
	return out
}

// workerPool serves each request with one of its workers, for service; requests beyond
// the workers wait for one.
type workerPool struct {
	mu      sync.Mutex
	workers chan struct{}
	service time.Duration
	jitter  float64
	rnd     *rand.Rand // guarded by mu
}

func (p *workerPool) resize(n int) {
	p.mu.Lock()
	p.workers = make(chan struct{}, n)
	p.mu.Unlock()
}

func (p *workerPool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	workers := p.workers
	d := time.Duration(float64(p.service) * (1 + p.jitter*(2*p.rnd.Float64()-1)))
	p.mu.Unlock()
	workers <- struct{}{}
	time.Sleep(d)
	<-workers
	io.WriteString(w, "ok\n")
}

// pipeListener is a net.Listener of in-memory connections, which testing/synctest can
// wait on, unlike sockets.
type pipeListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "closedloop.test:80" }
