package redisstore

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// childEnv carries the parameters of TestMultiProcessChild from the parent process:
// "cluster|standalone;addr,addr;prefix;start unix ns".
const childEnv = "REDISSTORE_TEST_CHILD"

const (
	procs      = 4
	goroutines = 32
	attempts   = 40 // per goroutine and algorithm
)

// exactLimit refills one unit per 8.76 hours: during the test, nothing refills.
var exactLimit = ratelimit.Limit{Rate: 1000, Period: 365 * 24 * time.Hour}

// testMultiProcess runs procs copies of this test binary, each with goroutines goroutines
// hammering one key per algorithm, and requires that exactly the limit was admitted.
func testMultiProcess(t *testing.T, mode string, addrs []string) {
	start := time.Now().Add(500 * time.Millisecond).UnixNano()
	storetest.RunExact(t, storetest.Exact{
		Test: "TestMultiProcessChild", Env: childEnv,
		Spec:  fmt.Sprintf("%s;%s;%s;%d", mode, strings.Join(addrs, ","), testPrefix(t), start),
		Procs: procs, Algorithms: algorithms, Limit: exactLimit,
	})
}

// TestMultiProcessChild is the child of testMultiProcess; it does nothing unless run by it.
func TestMultiProcessChild(t *testing.T) {
	spec := storetest.ChildSpec(t, childEnv)
	f := strings.Split(spec, ";")
	if len(f) != 4 {
		t.Fatalf("bad %s=%q", childEnv, spec)
	}
	mode, addrs, prefix := f[0], strings.Split(f[1], ","), f[2]
	startNs, _ := strconv.ParseInt(f[3], 10, 64)
	opts := &Options{Prefix: prefix, Policy: ratelimit.FailError, Timeout: 5 * time.Second}
	var s *Store
	switch mode {
	case "cluster":
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, PoolSize: goroutines})
		defer c.Close()
		s = New(c, opts)
	case "rueidis":
		c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s = NewRueidis(c, opts)
	default:
		c := redis.NewClient(&redis.Options{Addr: addrs[0], ContextTimeoutEnabled: true, PoolSize: goroutines})
		defer c.Close()
		s = New(c, opts)
	}
	defer s.Close()
	time.Sleep(time.Until(time.Unix(0, startNs)))
	storetest.ChildExact(t, s, algorithms, exactLimit, goroutines, attempts)
}

// TestMultiProcess runs the multi-process test on a standalone server and on a Cluster,
// through go-redis and rueidis. Not parallel: its load would disturb the timing of the
// parallel tests, which run after it.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	addr := redistest.Addr(t)
	t.Run("standalone", func(t *testing.T) { testMultiProcess(t, "standalone", []string{addr}) })
	t.Run("rueidis", func(t *testing.T) { testMultiProcess(t, "rueidis", []string{addr}) })
	cl := redistest.StartCluster(t)
	t.Run("cluster", func(t *testing.T) { testMultiProcess(t, "cluster", cl.Addrs()) })
	t.Run("rueidis-cluster", func(t *testing.T) { testMultiProcess(t, "rueidis", cl.Addrs()) })
}
