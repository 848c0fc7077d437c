package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// countingHook counts the scripts go-redis sends alone and in pipelines (of which those
// that carry more than one).
type countingHook struct {
	alone, piped, pipelines, shared atomic.Int64 // shared: pipelines of more than one script
}

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.alone.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var scripts int64
		for _, c := range cmds {
			if c.Name() == "evalsha" {
				scripts++
			}
		}
		if scripts > 0 { // not the connection's own set-up
			h.pipelines.Add(1)
		}
		if scripts > 1 {
			h.shared.Add(1)
		}
		h.piped.Add(scripts)
		return next(ctx, cmds)
	}
}

// TestCoalesced checks that the scripts of concurrent calls share pipelines, each sent
// once, and that the decisions stay exact: 64 goroutines on one key admit its capacity.
func TestCoalesced(t *testing.T) {
	for _, alone := range []bool{false, true} {
		c := newClient(t, redistest.Addr(t))
		h := &countingHook{}
		c.AddHook(h)
		s := newStoreOn(t, c, &Options{SendAlone: alone})
		l := ratelimit.Limit{Rate: 500, Period: time.Hour}
		const goroutines, each = 64, 20
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range each {
					r, err := s.Take(context.Background(), "hot", ratelimit.GCRA, l, 1)
					if err != nil {
						t.Error(err)
						return
					}
					if r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		sent := h.alone.Load() + h.piped.Load()
		t.Logf("SendAlone %v: %d scripts alone, %d in %d pipelines (%d shared)", alone, h.alone.Load(), h.piped.Load(), h.pipelines.Load(), h.shared.Load())
		if allowed.Load() != 500 {
			t.Errorf("SendAlone %v: %d allowed, want the capacity 500", alone, allowed.Load())
		}
		if sent != goroutines*each {
			t.Errorf("SendAlone %v: %d scripts sent for %d decisions, want one each", alone, sent, goroutines*each)
		}
		if !alone && h.shared.Load() == 0 {
			t.Errorf("no pipeline carried more than one script: the calls were not coalesced")
		}
		if alone && h.pipelines.Load() != 0 {
			t.Errorf("SendAlone: %d pipelines, want every script alone", h.pipelines.Load())
		}
	}
}

// TestCoalescedDeadline checks that a call queued behind the round trips in flight still
// returns by its own deadline, without running its script, while they wait on a server a
// long script keeps busy.
func TestCoalescedDeadline(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newStoreOn(t, c, &Options{Policy: ratelimit.FailError, Timeout: 5 * time.Second, BreakerThreshold: -1})
	co := s.backend.(*goRedis).co
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 20, Period: time.Hour}
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1); err != nil { // loads the script
		t.Fatal(err)
	}
	// Another client keeps the server busy for about 800ms.
	busy := newClient(t, srv.Addr())
	busyDone := make(chan error, 1)
	go func() {
		busyDone <- busy.Eval(ctx, `local t = redis.call('TIME') local start = t[1] * 1e6 + t[2]
while true do t = redis.call('TIME') if t[1] * 1e6 + t[2] - start > 800000 then return 1 end end`, nil).Err()
	}()
	time.Sleep(50 * time.Millisecond)

	// maxInFlight calls, each sent alone, wait for the busy server.
	order := make(chan string, maxInFlight+1)
	errs := make(chan error, maxInFlight)
	for range maxInFlight {
		go func() {
			_, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1)
			errs <- err
			order <- "in flight"
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		co.mu.Lock()
		n := co.inFlight
		co.mu.Unlock()
		if n == maxInFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d round trips in flight after 5s, want %d", n, maxInFlight)
		}
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := s.Take(short, "k", ratelimit.GCRA, l, 1) // queued behind them
	order <- "queued"
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the queued call's error = %v, want its deadline", err)
	}
	if got := <-order; got != "queued" {
		t.Errorf("a call in flight returned first: the queued call waited past its deadline")
	}
	for range maxInFlight {
		if err := <-errs; err != nil {
			t.Errorf("a call in flight: %v", err)
		}
	}
	if err := <-busyDone; err != nil {
		t.Fatal(err)
	}
	r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 0)
	if want := 20 - 1 - maxInFlight; err != nil || r.Remaining != want {
		t.Errorf("after all: (%+v, %v), want %d left: the queued call's script never ran", r, err, want)
	}
}
