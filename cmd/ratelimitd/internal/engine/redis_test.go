package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
)

// TestRedisStore decides against a real Redis server, through both clients: a request of
// two descriptors is all-or-nothing, and a denial takes nothing. It is skipped without
// redis-server unless RATELIMIT_REQUIRE_REDIS=1.
func TestRedisStore(t *testing.T) {
	addr := redistest.Addr(t)
	set := compile(t, `
domain: api
descriptors:
  - key: user
    rate_limit: {unit: year, requests_per_unit: 5}
  - key: ip
    rate_limit: {unit: year, requests_per_unit: 1}
`)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T, prefix string) ratelimit.Store
	}{
		{"go-redis", func(t *testing.T, prefix string) ratelimit.Store {
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { c.Close() })
			return redisstore.New(c, &redisstore.Options{Prefix: prefix})
		}},
		{"rueidis", func(t *testing.T, prefix string) ratelimit.Store {
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
			if err != nil {
				t.Fatalf("rueidis.NewClient: %v", err)
			}
			t.Cleanup(c.Close)
			return redisstore.NewRueidis(c, &redisstore.Options{Prefix: prefix})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A prefix of the test's own, in case REDIS_ADDR names a shared server.
			e := New(tc.store(t, fmt.Sprintf("engine-test:%s:%d:", tc.name, time.Now().UnixNano())), set, nil)
			two := &Request{Domain: "api", Descriptors: []Descriptor{desc("user", "u"), desc("ip", "1")}}
			var got []string
			for _, req := range []*Request{two, two, {Domain: "api", Descriptors: []Descriptor{desc("user", "u")}}} {
				resp, err := e.Decide(t.Context(), req)
				if err != nil {
					t.Fatalf("Decide: got error %v, want none", err)
				}
				got = append(got, resp.Code.String()+": "+strings.Join(describeAll(resp.Statuses), ", "))
			}
			want := []string{
				"OK: OK 5/YEAR remaining 4, OK 1/YEAR remaining 0",
				// ip is over: user takes nothing, and says it would have passed.
				"OVER_LIMIT: OK 5/YEAR remaining 4, OVER_LIMIT 1/YEAR remaining 0",
				"OK: OK 5/YEAR remaining 3",
			}
			if !slices.Equal(got, want) {
				t.Errorf("answers:\ngot  %q\nwant %q", got, want)
			}
		})
	}
}
