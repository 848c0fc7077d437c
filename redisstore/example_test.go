package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/redisstore"
)

// redisAddr is the server the examples use; Main starts one (see redistest.Main).
var redisAddr string

func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &redisAddr)) }

// One limit shared by every process that uses the same Redis: 3 requests per minute per
// user, as GCRA. Two stores stand for two processes: what one admits, the other sees.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  redisAddr, // "localhost:6379", say
		ContextTimeoutEnabled: true,      // stop waiting at the store's deadline
		DialerRetries:         1,         // the store retries refused dials itself
	})
	defer client.Close()
	opts := &redisstore.Options{Prefix: "example:", Timeout: time.Second}
	web, worker := redisstore.New(client, opts), redisstore.New(client, opts)
	defer web.Close()
	defer worker.Close()
	limit := ratelimit.PerMinute(3)
	onWeb := ratelimit.New(web, ratelimit.GCRA, limit)
	onWorker := ratelimit.New(worker, ratelimit.GCRA, limit)

	ctx := context.Background()
	if err := onWeb.Reset(ctx, "user:alice"); err != nil { // a fresh start for the example
		fmt.Println(err)
		return
	}
	for i, lim := range []*ratelimit.Limiter{onWeb, onWeb, onWorker, onWorker} {
		r, err := lim.Allow(ctx, "user:alice")
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("request %d: allowed=%v remaining=%d\n", i+1, r.Allowed, r.Remaining)
	}
	// Output:
	// request 1: allowed=true remaining=2
	// request 2: allowed=true remaining=1
	// request 3: allowed=true remaining=0
	// request 4: allowed=false remaining=0
}
