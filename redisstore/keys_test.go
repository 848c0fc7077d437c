package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/redis/go-redis/v9"
)

// oddKeys hold the bytes that break naive layouts: braces choosing a Cluster slot, colons,
// NUL, the escape character, invalid UTF-8, and the longest key allowed.
func oddKeys() []string {
	return []string{
		"plain", "{", "}", "{}", "}{", "{tag}", "a{b}c", "{a}", "%7D", "}%", "%",
		"user:1:{x}", "\x00", "a\x00b", "\xff\xfe{\x80}", "ünïcödé", strings.Repeat("{}", 5000),
		strings.Repeat("k", ratelimit.MaxKeyLen),
	}
}

// testOddKeys takes from every odd key under every algorithm and checks that each key has
// its own state: no CROSSSLOT, no collision.
func testOddKeys(t *testing.T, s *Store) {
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 2, Period: time.Hour}
	keys := oddKeys()
	for _, alg := range algorithms {
		for i, k := range keys {
			r, err := s.Take(ctx, k, alg, l, 1)
			if err != nil {
				t.Fatalf("%v key %d: %v", alg, i, err)
			}
			if !r.Allowed || r.Remaining != 1 {
				t.Fatalf("%v key %d: first Take = %+v, want allowed with 1 remaining (state shared with another key?)", alg, i, r)
			}
		}
	}
	seen := map[string]int{}
	for i, k := range keys {
		rk := s.key(k, ratelimit.GCRA)
		if j, dup := seen[rk]; dup {
			t.Fatalf("keys %d and %d map to the same Redis key", j, i)
		}
		seen[rk] = i
		// The slot is chosen by the escaped user key alone.
		tag := rk[strings.IndexByte(rk, '{')+1 : strings.IndexByte(rk, '}')]
		if tag == "" || strings.Contains(tag, "}") {
			t.Fatalf("key %d: hash tag %q", i, tag)
		}
		if s.key(k, ratelimit.TokenBucket)[:len(s.prefix)+len(tag)+2] != rk[:len(s.prefix)+len(tag)+2] {
			t.Fatalf("key %d: algorithms use different hash tags", i)
		}
	}
	for _, alg := range algorithms {
		if err := s.Reset(ctx, keys[len(keys)-1], alg); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOddKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	testOddKeys(t, s)
}

// scanPrefix returns the keys under prefix.
func scanPrefix(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	pattern := strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(prefix) + "*"
	var keys []string
	var mu sync.Mutex // ForEachMaster scans the primaries in parallel
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			keys = append(keys, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("scan: unsupported client %T", c)
	}
	return keys, err
}

// TestKeysExpire checks that every key carries a TTL no longer than its state matters, and
// that the keyspace is empty once the period has passed.
func TestKeysExpire(t *testing.T) {
	t.Parallel()
	s, c := newStore(t, nil)
	testKeysExpire(t, s, c)
}

func testKeysExpire(t *testing.T, s *Store, c redis.UniversalClient) {
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 4, Period: 200 * time.Millisecond, Burst: 2}
	for _, alg := range algorithms {
		for i := 0; i < 3; i++ {
			key := fmt.Sprint("k", i)
			t0 := time.Now()
			if _, err := s.Take(ctx, key, alg, l, 1); err != nil {
				t.Fatal(err)
			}
			// At most two periods (the sliding window counter's current and next window).
			// A fixed window's key may already be gone: its window can end at any time. Any
			// key may be gone once T = Period/Rate, its shortest TTL, has passed since the
			// call (a loaded machine).
			ttl, err := c.PTTL(ctx, s.key(key, alg)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if (ttl == -2*time.Nanosecond || ttl == 0) && (alg == ratelimit.FixedWindow || time.Since(t0) >= l.Period/time.Duration(l.Rate)) {
				continue
			}
			if ttl <= 0 || ttl > 2*l.Period+time.Millisecond {
				t.Errorf("%v: PTTL = %v, want in (0, %v]", alg, ttl, 2*l.Period)
			}
		}
	}
	// Redis expires keys lazily and by sampling: poll, with a generous deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := scanPrefix(ctx, c, s.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys left 10s after their period: %q", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScriptFlush(t *testing.T) {
	t.Parallel()
	s, c := newStore(t, nil)
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 3, Period: time.Hour}
	for _, alg := range algorithms {
		for i := 0; i < 4; i++ {
			if i == 2 {
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			r, err := s.Take(ctx, "k", alg, l, 1)
			if err != nil {
				t.Fatalf("%v call %d: %v", alg, i, err)
			}
			if want := i < 3; r.Allowed != want || r.Remaining != max(0, 2-i) {
				t.Fatalf("%v call %d = %+v, want allowed %v, remaining %d", alg, i, r, want, max(0, 2-i))
			}
		}
	}
}

// TestCorruptState checks that a key holding something the scripts did not write is an
// error, not a panic and not a policy answer.
func TestCorruptState(t *testing.T) {
	t.Parallel()
	s, c := newStore(t, &Options{Policy: ratelimit.FailOpen})
	ctx := context.Background()
	for _, alg := range algorithms {
		k := s.key("k", alg)
		for _, set := range []func() error{
			func() error { return c.Set(ctx, k, "garbage", 0).Err() },
			func() error { return c.HSet(ctx, k, "a", "b").Err() },
		} {
			c.Del(ctx, k)
			if err := set(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Take(ctx, "k", alg, ratelimit.PerSecond(5), 1); err == nil {
				t.Errorf("%v: Take on a corrupt key succeeded", alg)
			}
		}
	}
	if st := s.Stats(); st.PolicyAnswers != 0 {
		t.Errorf("corrupt state answered by policy: %+v", st)
	}
}
