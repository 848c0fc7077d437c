package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three primaries and three replicas started by a test, with
// a cluster-node-timeout of 1s and cluster-require-full-coverage off, so that a failed
// primary is replaced in about two seconds and the other shards keep serving meanwhile.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts a Cluster and waits until every node reports cluster_state:ok and
// every replica is in sync. It is stopped when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := cliBinary(t)
	c := startNodes(t, 6)
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	if err := c.WaitHealthy(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartPrimaries starts a Cluster of n primaries and no replicas, the slots split evenly
// between them, for measuring how throughput scales with shards (redis-cli refuses to
// create a Cluster of fewer than three primaries, so the slots are assigned directly). It
// waits until every node reports cluster_state:ok, and is stopped when t ends.
func StartPrimaries(t testing.TB, n int) *Cluster {
	t.Helper()
	c := startNodes(t, n)
	ctx := context.Background()
	for i, s := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		lo, hi := i*16384/n, (i+1)*16384/n-1
		// Distinct config epochs, set while each node is alone, let the slot claims spread.
		err := cl.Do(ctx, "cluster", "set-config-epoch", i+1).Err()
		if err == nil {
			err = cl.Do(ctx, "cluster", "addslotsrange", lo, hi).Err()
		}
		if err == nil && i > 0 {
			err = cl.Do(ctx, "cluster", "meet", "127.0.0.1", c.Nodes[0].Port(), busPort(c.Nodes[0])).Err()
		}
		cl.Close()
		if err != nil {
			t.Fatalf("redistest: assign slots %d-%d to %s: %v", lo, hi, s.Addr(), err)
		}
	}
	if err := c.WaitHealthy(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// busPort returns the Cluster bus port s was started with.
func busPort(s *Server) string {
	for i, a := range s.args {
		if a == "--cluster-port" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

// startNodes starts n cluster-enabled servers, not yet joined.
func startNodes(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	c := &Cluster{}
	for range n {
		var s *Server
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			var busPort int
			if busPort, err = FreePort(); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			s = newServer(bin, dir, []string{
				"--cluster-enabled", "yes", "--cluster-config-file", dir + "/nodes.conf",
				"--cluster-node-timeout", "1000", "--cluster-port", strconv.Itoa(busPort),
				"--cluster-require-full-coverage", "no", "--repl-diskless-sync", "yes",
				"--repl-diskless-sync-delay", "0", "--shutdown-on-sigterm", "nosave now",
			})
			t.Cleanup(s.Stop)
			if err = s.start(0); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, s)
	}
	return c
}

// Addrs returns the addresses of the nodes that are running.
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, s := range c.Nodes {
		s.mu.Lock()
		running := s.cmd != nil
		s.mu.Unlock()
		if running {
			addrs = append(addrs, s.Addr())
		}
	}
	return addrs
}

// WaitHealthy waits until every running node reports cluster_state:ok, all 16384 slots
// are served, and every replica's link to its primary is up.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	ctx := context.Background()
	return waitFor(timeout, func() error {
		for _, addr := range c.Addrs() {
			ci, err := clusterInfo(ctx, addr)
			if err != nil {
				return err
			}
			if !strings.Contains(ci, "cluster_state:ok") || !strings.Contains(ci, "cluster_slots_ok:16384") {
				return fmt.Errorf("redistest: cluster not ready at %s: %s", addr, ci)
			}
			repl, err := info(ctx, addr, "replication")
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("redistest: replica %s not in sync", addr)
			}
		}
		return nil
	})
}

func clusterInfo(ctx context.Context, addr string) (string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer cl.Close()
	return cl.ClusterInfo(ctx).Result()
}

// PrimaryFor returns the node serving key's slot as primary, as the node at Addrs
// reports it.
func (c *Cluster) PrimaryFor(ctx context.Context, key string) (*Server, error) {
	addrs := c.Addrs()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("redistest: no node running")
	}
	cl := redis.NewClient(&redis.Options{Addr: addrs[0], MaxRetries: -1})
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, node := range sh.Nodes {
				if node.Role != "master" {
					continue
				}
				for _, s := range c.Nodes {
					if s.Port() == int(node.Port) {
						return s, nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no primary serves slot %d", slot)
}

// Client returns a ClusterClient for c that notices topology changes within a second
// (go-redis reloads its slot map every 60s by default), with context deadlines honoured.
// It is closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      c.Addrs(),
		ClusterStateReloadInterval: time.Second,
		ContextTimeoutEnabled:      true,
		DialTimeout:                200 * time.Millisecond,
		DialerRetries:              1,
	})
	t.Cleanup(func() { cl.Close() })
	return cl
}
