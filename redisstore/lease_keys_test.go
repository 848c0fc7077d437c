package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// TestLeaseMaxKeys: local memory never holds more than MaxKeys leases, and an evicted
// key's unspent units go back to Redis, so that Redis ends holding exactly what was
// admitted. FirstWait makes each key's first call wait for its lease, so each is allowed.
func TestLeaseMaxKeys(t *testing.T) {
	t.Parallel()
	c := newClient(t, redistest.Addr(t))
	const maxKeys, keys = 4 * leaseShards, 600
	s := newLease(t, c, &LeaseOptions{Accuracy: 1, MaxKeys: maxKeys, FirstWait: 5 * time.Second})
	l := ratelimit.Limit{Rate: 10, Period: 24 * time.Hour}
	ctx := context.Background()
	for i := range keys {
		r, err := s.Take(ctx, "k"+strconv.Itoa(i), ratelimit.FixedWindow, l, 1)
		if err != nil || !r.Allowed {
			t.Fatalf("first Take of key %d = %+v, %v; want allowed after waiting for its lease", i, r, err)
		}
		if n := s.Stats().Keys; n > maxKeys {
			t.Fatalf("%d keys in memory after %d keys, want at most MaxKeys %d", n, i+1, maxKeys)
		}
	}
	st := s.Stats()
	if st.Evicted < keys-maxKeys || st.Decisions != keys || st.Allowed != keys {
		t.Errorf("stats %+v: want at least %d evicted, %d decisions, all allowed", st, keys-maxKeys, keys)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if n := count(t, c, s.strict.key("k"+strconv.Itoa(i), ratelimit.FixedWindow)); n != 1 {
			t.Fatalf("key %d: Redis counts %d after Close, want the 1 admitted (an evicted lease gives its units back)", i, n)
		}
	}
	if st := s.Stats(); st.Lost != 0 || st.Released != keys*uint64(l.Rate-1) {
		t.Errorf("stats %+v: want nothing lost, %d units released", st, keys*(l.Rate-1))
	}
}

// TestLeaseFirstWaitHung: with Redis hung, a first decision waits FirstWait, no longer,
// and is then denied.
func TestLeaseFirstWaitHung(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newLease(t, c, &LeaseOptions{Options: Options{Timeout: 2 * time.Second}, FirstWait: 200 * time.Millisecond})
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	r, err := s.Take(context.Background(), "k", ratelimit.FixedWindow, ratelimit.PerSecond(100), 1)
	d := time.Since(start)
	if err != nil || r.Allowed {
		t.Fatalf("first Take with Redis hung = %+v, %v; want a denial", r, err)
	}
	if d < 200*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("first Take took %v, want FirstWait (200ms), not the round trip's 2s Timeout", d)
	}
	long := newLease(t, c, &LeaseOptions{Options: Options{Timeout: 10 * time.Second}, FirstWait: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	if r, err := long.Take(ctx, "k", ratelimit.FixedWindow, ratelimit.PerSecond(100), 1); err != nil || r.Allowed {
		t.Fatalf("first Take with a 20ms context = %+v, %v; want a denial", r, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("first Take with a 20ms context took %v, want it bounded by the context, not FirstWait (10s)", d)
	}
}
