package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestNoDoubleCharge checks that a script whose reply timed out is not sent again by
// go-redis's own retries: with the client's defaults (MaxRetries 3, read timeouts retried),
// a hung server that wakes up would otherwise run it four times.
func TestNoDoubleCharge(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ReadTimeout: 100 * time.Millisecond, MaxRetries: 3})
	t.Cleanup(func() { c.Close() })
	s := newStoreOn(t, c, &Options{Policy: ratelimit.FailError, Timeout: 5 * time.Second, BreakerThreshold: -1})
	direct := newStoreOn(t, newClient(t, srv.Addr()), &Options{Prefix: s.prefix})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 10, Period: time.Hour}
	// Open the connection and load the script with peeks, which take nothing: on a loaded
	// machine one may outlast the short read timeout, so try a few.
	for i := 0; ; i++ {
		_, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 0)
		if err == nil {
			break
		}
		if i == 9 {
			t.Fatalf("10 peeks through the proxy failed, the last with %v", err)
		}
	}
	// The script runs at once; its reply arrives well after the client's read timeout.
	proxy.DelayOpenConns(time.Second)
	_, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1)
	proxy.DelayOpenConns(0)
	if err == nil {
		t.Fatal("Take with a late reply succeeded: go-redis retried the script, which had run")
	}
	r, err := direct.Take(ctx, "k", ratelimit.TokenBucket, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The timed-out call ran once: 9 left. Each retry would take one more.
	if r.Remaining != 9 {
		t.Fatalf("Remaining = %d after one timed-out call, want 9: the script ran %d times", r.Remaining, 10-r.Remaining)
	}
	if st := s.Stats(); st.Retries != 0 {
		t.Fatalf("the store retried a call that may have run: %+v", st)
	}
}

// TestDecode feeds decode replies of every wrong shape: errors, never panics.
func TestDecode(t *testing.T) {
	good := []any{int64(1), int64(3), int64(0), int64(0), int64(12), int64(-5)}
	x, err := decodeGoRedis(good, 6)
	if err != nil {
		t.Fatal(err)
	}
	d, err := decode(x)
	if err != nil || !d.Allowed || d.Remaining != 3 || d.ResetAfter != 11995 {
		t.Fatalf("decode(%v) = %+v, %v", good, d, err)
	}
	bad := []any{
		nil, "x", int64(1), []any{}, []any{int64(1)},
		[]any{int64(1), int64(3), int64(0), int64(0), int64(12)},
		[]any{int64(1), int64(3), int64(0), int64(0), int64(12), int64(0), int64(0)},
		[]any{"1", int64(3), int64(0), int64(0), int64(12), int64(0)},
		[]any{int64(2), int64(3), int64(0), int64(0), int64(12), int64(0)},
		[]any{int64(1), int64(-1), int64(0), int64(0), int64(12), int64(0)},
		[]any{int64(1), int64(3), int64(5), int64(0), int64(12), int64(0)},
		[]any{int64(0), int64(3), int64(-5), int64(0), int64(12), int64(0)},
		[]any{int64(0), int64(3), int64(0), int64(-1), int64(12), int64(0)},
		[]any{int64(0), int64(3), int64(1) << 62, int64(0), int64(12), int64(0)},
		[]any{int64(0), int64(3), int64(0), int64(5000), int64(12), int64(0)},
		[]any{int64(1), int64(3), int64(0), int64(0), nil, int64(0)},
	}
	for _, v := range bad {
		x, err := decodeGoRedis(v, 6)
		var d algo.Decision
		if err == nil {
			d, err = decode(x)
		}
		if !errors.Is(err, errReply) {
			t.Errorf("decode(%#v) = %+v, %v; want errReply", v, d, err)
		}
	}
}
