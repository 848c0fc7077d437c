package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/rueidis"
)

// TestDialRueidisBeforeRedis: a store dialed while Redis is down answers by policy at
// once, reports each failed attempt, and uses Redis once it is up.
func TestDialRueidisBeforeRedis(t *testing.T) {
	r := redistest.Start(t)
	r.Kill()
	var mu sync.Mutex
	var reported []error
	s := DialRueidis(rueidis.ClientOption{InitAddress: []string{r.Addr()}, DisableCache: true}, &Options{
		Policy: ratelimit.FailOpen,
		// Calls before the connection fail at once whatever the timeout; a long one keeps a
		// loaded machine from turning a call to the live Redis into a policy answer.
		Timeout: 5 * time.Second,
		OnError: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		},
	})
	defer s.Close()
	<-s.Dialed()
	lim := ratelimit.Limit{Rate: 2, Period: time.Hour}
	for i := range 3 {
		res, err := s.Take(context.Background(), "k", ratelimit.FixedWindow, lim, 1)
		if err != nil || !res.Allowed {
			t.Fatalf("call %d with Redis down: %+v, %v; want allowed by FailOpen", i, res, err)
		}
	}
	if err := s.Ping(context.Background()); !errors.Is(err, errNotConnected) {
		t.Errorf("Ping with Redis down: %v, want errNotConnected", err)
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no connection within 10s of Redis's start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Past the breaker's cool-down, Redis decides: 2 an hour, the third denied.
	deadline = time.Now().Add(10 * time.Second)
	for s.Stats().BreakerOpen {
		if time.Now().After(deadline) {
			t.Fatal("the breaker stayed open 10s after Redis came up")
		}
		s.Take(context.Background(), "probe", ratelimit.FixedWindow, lim, 0)
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 3 {
		res, err := s.Take(context.Background(), "up", ratelimit.FixedWindow, lim, 1)
		if err != nil || res.Allowed != (i < 2) {
			t.Fatalf("call %d with Redis up: %+v, %v; want allowed %v", i, res, err, i < 2)
		}
	}
	if n, err := r.Client(t).Exists(context.Background(), s.key("up", ratelimit.FixedWindow)).Result(); err != nil || n != 1 {
		t.Errorf("the key is not in Redis: %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) == 0 {
		t.Error("no failed connection attempt reached OnError")
	}
}

// TestDialRueidisClose: with Redis up the store is connected once Dialed is closed; a
// closed store answers ErrClosed.
func TestDialRueidisClose(t *testing.T) {
	r := redistest.Start(t)
	s := DialRueidis(rueidis.ClientOption{InitAddress: []string{r.Addr()}, DisableCache: true}, nil)
	<-s.Dialed()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping once dialed with Redis up: %v", err)
	}
	s.Close()
	s.Close()
	if _, err := s.Take(context.Background(), "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Take after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
}

// TestDialedOfNew: a Store over the caller's client is dialed from the start.
func TestDialedOfNew(t *testing.T) {
	s := New(redistest.Start(t).Client(t), nil)
	defer s.Close()
	select {
	case <-s.Dialed():
	default:
		t.Error("Dialed of a Store from New is not closed")
	}
}
