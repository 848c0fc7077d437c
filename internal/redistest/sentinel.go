package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a primary, one replica, and three Sentinels monitoring them under
// MasterName, with down-after-milliseconds 1000 so that a failover takes about two seconds.
type Sentinel struct {
	MasterName string
	Primary    *Server // the primary at start; after a failover, a replica
	Replica    *Server
	Sentinels  []*Server
}

// StartSentinel starts a Sentinel group and waits until the Sentinels know each other and
// the replica. It is stopped when t ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := Binary(t)
	g := &Sentinel{MasterName: "ratelimit"}
	g.Primary = Start(t)
	g.Replica = Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(g.Primary.Port()))
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n", g.MasterName, g.Primary.Port())
		if err := os.WriteFile(filepath.Join(dir, "sentinel.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{bin: bin, dir: dir,
			head: []string{filepath.Join(dir, "sentinel.conf"), "--sentinel"},
			args: []string{"--bind", "127.0.0.1", "--protected-mode", "no", "--daemonize", "no",
				"--dir", dir, "--logfile", filepath.Join(dir, "redis.log")}}
		t.Cleanup(s.Stop)
		if err := s.start(0); err != nil {
			t.Fatal(err)
		}
		g.Sentinels = append(g.Sentinels, s)
	}
	ctx := context.Background()
	err := waitFor(20*time.Second, func() error {
		for _, s := range g.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			m, err := sc.Master(ctx, g.MasterName).Result()
			sc.Close()
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return fmt.Errorf("redistest: sentinel %s sees %s other sentinels and %s replicas", s.Addr(), m["num-other-sentinels"], m["num-slaves"])
			}
		}
		repl, err := info(ctx, g.Replica.Addr(), "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("redistest: replica not in sync")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// SentinelAddrs returns the Sentinels' addresses.
func (g *Sentinel) SentinelAddrs() []string {
	var a []string
	for _, s := range g.Sentinels {
		a = append(a, s.Addr())
	}
	return a
}

// MasterAddr returns the primary's address as the first Sentinel reports it.
func (g *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.Sentinels[0].Addr(), MaxRetries: -1})
	defer sc.Close()
	a, err := sc.GetMasterAddrByName(ctx, g.MasterName).Result()
	if err != nil {
		return "", err
	}
	return a[0] + ":" + a[1], nil
}

// Client returns a failover client for the group, closed when t ends.
func (g *Sentinel) Client(t testing.TB) *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            g.MasterName,
		SentinelAddrs:         g.SentinelAddrs(),
		ContextTimeoutEnabled: true,
		DialTimeout:           200 * time.Millisecond,
		DialerRetries:         1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}
