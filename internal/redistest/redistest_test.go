package redistest

import (
	"context"
	"testing"
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
