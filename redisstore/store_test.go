package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var algorithms = []ratelimit.Algorithm{
	ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA,
}

// testPrefix returns a key prefix no other test uses, so tests can share a server.
func testPrefix(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("{", "_", "}", "_", "/", ".").Replace(t.Name())
	return "rltest:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// newClient returns a client for addr that honours context deadlines.
func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	return c
}

// newStore returns a store on a standalone server (REDIS_ADDR or its own), with its own
// prefix, closed when t ends.
func newStore(t testing.TB, opts *Options) (*Store, redis.UniversalClient) {
	c := newClient(t, redistest.Addr(t))
	return newStoreOn(t, c, opts), c
}

func newStoreOn(t testing.TB, c redis.UniversalClient, opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = testPrefix(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second // tests of semantics run on loaded machines, under -race
	}
	if o.Policy == ratelimit.FailLocal && o.OnError == nil {
		o.Policy = ratelimit.FailError // tests see failures unless they ask for a policy
	}
	s := New(c, &o)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTakeBasic(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}
	r, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Result{Allowed: true, Limit: ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}, Remaining: 2, ResetAfter: 300 * time.Millisecond}
	if r.Allowed != want.Allowed || r.Limit != want.Limit || r.Remaining != want.Remaining || r.ResetAfter > want.ResetAfter || r.ResetAfter < want.ResetAfter-10*time.Millisecond {
		t.Fatalf("Take = %+v, want about %+v", r, want)
	}
	r, err = s.Take(ctx, "k", ratelimit.TokenBucket, l, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Allowed || r.Remaining != 2 || r.RetryAfter <= 0 || r.RetryAfter > 100*time.Millisecond {
		t.Fatalf("second Take = %+v, want a denial with Remaining 2, RetryAfter ≤ 100ms", r)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	ok := ratelimit.PerSecond(10)
	cases := []struct {
		name  string
		key   string
		alg   ratelimit.Algorithm
		limit ratelimit.Limit
		n     int
		want  error
	}{
		{"empty key", "", ratelimit.GCRA, ok, 1, ratelimit.ErrInvalidKey},
		{"long key", strings.Repeat("k", ratelimit.MaxKeyLen+1), ratelimit.GCRA, ok, 1, ratelimit.ErrInvalidKey},
		{"algorithm", "k", 0, ok, 1, ratelimit.ErrInvalidAlgorithm},
		{"algorithm 7", "k", 7, ok, 1, ratelimit.ErrInvalidAlgorithm},
		{"zero limit", "k", ratelimit.GCRA, ratelimit.Limit{}, 1, ratelimit.ErrInvalidLimit},
		{"negative cost", "k", ratelimit.GCRA, ok, -1, ratelimit.ErrInvalidCost},
		{"cost above capacity", "k", ratelimit.FixedWindow, ok, 11, ratelimit.ErrInvalidCost},
		{"sub-microsecond period", "k", ratelimit.GCRA, ratelimit.Limit{Rate: 1, Period: 1500}, 1, ratelimit.ErrInvalidLimit},
		{"period above 2^50µs", "k", ratelimit.FixedWindow, ratelimit.Limit{Rate: 1, Period: (1<<50 + 1) * time.Microsecond}, 1, ratelimit.ErrInvalidLimit},
	}
	if over := uint64(maxRate + 1); over <= math.MaxInt { // not on 32-bit platforms
		cases = append(cases, []struct {
			name  string
			key   string
			alg   ratelimit.Algorithm
			limit ratelimit.Limit
			n     int
			want  error
		}{
			{"rate above 2^43", "k", ratelimit.GCRA, ratelimit.Limit{Rate: int(over), Period: time.Hour}, 1, ratelimit.ErrInvalidLimit},
			{"burst above 2^43", "k", ratelimit.TokenBucket, ratelimit.Limit{Rate: 1, Period: time.Second, Burst: int(over)}, 1, ratelimit.ErrInvalidLimit},
		}...)
	}
	for _, c := range cases {
		if _, err := s.Take(ctx, c.key, c.alg, c.limit, c.n); !errors.Is(err, c.want) {
			t.Errorf("%s: Take error = %v, want %v", c.name, err, c.want)
		}
	}
	if err := s.Reset(ctx, "", ratelimit.GCRA); !errors.Is(err, ratelimit.ErrInvalidKey) {
		t.Errorf("Reset(\"\") = %v, want ErrInvalidKey", err)
	}
	if err := s.Reset(ctx, "k", 0); !errors.Is(err, ratelimit.ErrInvalidAlgorithm) {
		t.Errorf("Reset(alg 0) = %v, want ErrInvalidAlgorithm", err)
	}
	s.Close()
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, ok, 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Errorf("Take after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestPrefixWithBrace(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, &Options{Prefix: "a{b}:"})
	if _, err := s.Take(context.Background(), "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); err == nil {
		t.Fatal("Take with a braced prefix succeeded")
	}
}
