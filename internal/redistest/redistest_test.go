package redistest

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func TestStartRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING after Kill succeeded")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	c := StartCluster(t)
	ctx := context.Background()
	cl := c.Client(t)
	for _, k := range []string{"a", "b", "c", "{x}y"} {
		if err := cl.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PrimaryFor(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}

func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	g := StartSentinel(t)
	ctx := context.Background()
	if err := g.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestStartPrimaries(t *testing.T) {
	for _, n := range []int{1, 2} {
		c := StartPrimaries(t, n)
		cl := c.Client(t)
		ctx := context.Background()
		for i := range 20 {
			if err := cl.Set(ctx, "k"+strconv.Itoa(i), i, time.Minute).Err(); err != nil {
				t.Fatalf("%d primaries: SET: %v", n, err)
			}
		}
		if got := len(c.Nodes); got != n {
			t.Errorf("%d nodes, want %d", got, n)
		}
	}
}

func TestOneTest(t *testing.T) {
	for pattern, want := range map[string]bool{
		"^TestChild$":        true,
		"^TestLeaseProcess$": true,
		"":                   false,
		"Take":               false, // would select ExampleStore_Take
		"^Example$":          false,
		"^TestA$|^Example$":  false,
		"^TestA.*$":          false,
		"^TestA$/sub":        false,
		"TestChild":          false,
		"^TestChild":         false,
	} {
		if got := oneTest(pattern); got != want {
			t.Errorf("oneTest(%q) = %v, want %v", pattern, got, want)
		}
	}
}
