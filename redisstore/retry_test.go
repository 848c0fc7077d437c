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
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ReadTimeout: 50 * time.Millisecond, MaxRetries: 3})
	t.Cleanup(func() { c.Close() })
	s := newStoreOn(t, c, &Options{Policy: ratelimit.FailError, Timeout: 2 * time.Second, BreakerThreshold: -1})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 10, Period: time.Hour}
	if _, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1); err != nil {
		t.Fatal(err)
	}
	// The script runs at once; its reply arrives after the client's read timeout.
	proxy.DelayOpenConns(200 * time.Millisecond)
	_, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1)
	proxy.DelayOpenConns(0)
	if err == nil {
		t.Fatal("Take with a late reply succeeded: go-redis retried the script, which had run")
	}
	direct := newStoreOn(t, newClient(t, srv.Addr()), &Options{Prefix: s.prefix})
	r, err := direct.Take(ctx, "k", ratelimit.TokenBucket, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	// One success and one timed-out call that ran: 8 left. Each retry would take one more.
	if r.Remaining != 8 {
		t.Fatalf("Remaining = %d after one success and one timed-out call, want 8: the script ran %d times", r.Remaining, 10-r.Remaining-1)
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
