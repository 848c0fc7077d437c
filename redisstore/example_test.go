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
// user, as GCRA.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  redisAddr, // "localhost:6379", say
		ContextTimeoutEnabled: true,      // stop waiting at the store's deadline
		DialerRetries:         1,         // the store retries refused dials itself
	})
	defer client.Close()
	store := redisstore.New(client, &redisstore.Options{Prefix: "example:", Timeout: time.Second})
	defer store.Close()
	lim := ratelimit.New(store, ratelimit.GCRA, ratelimit.PerMinute(3))

	ctx := context.Background()
	if err := lim.Reset(ctx, "user:alice"); err != nil { // a fresh start for the example
		fmt.Println(err)
		return
	}
	for i := range 4 {
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
