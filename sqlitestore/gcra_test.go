package sqlitestore

import (
	"context"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
)

// TestGCRAStaleClock checks that a GCRA call whose clock reads earlier than its row's last
// write (it read the clock, then waited for the write lock behind a later call, maybe of
// another process) is decided at that write's instant: it leaves one unit fewer, not two.
func TestGCRAStaleClock(t *testing.T) {
	s, _ := openTest(t, testOptions())
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 100, Period: time.Hour}
	c, err := rowstate.Validate(ctx, "stale", ratelimit.GCRA, l, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Take(ctx, c.Key, c.Alg, l, 1); err != nil || r.Remaining != 99 {
		t.Fatalf("first Take = (%+v, %v), want 99 left", r, err)
	}
	row, found, err := s.peek(ctx, c)
	if err != nil || !found {
		t.Fatalf("peek = (%+v, found %v, %v), want the row", row, found, err)
	}
	g := rowstate.GCRAArgs(c.P, c.Cost)
	var at, x, y int64
	stale := row.Y - int64(time.Minute)
	if err := s.stmts.gcra.QueryRowContext(ctx, c.Key, int64(c.Alg), stale, g.Rate, g.NQ, g.NR, g.CQ, g.CR).Scan(&at, &x, &y); err != nil {
		t.Fatal(err)
	}
	if y != row.Y {
		t.Errorf("the upsert at a clock a minute behind the row decided at %d, want the row's instant %d", y, row.Y)
	}
	if d := rowstate.GCRAAllowed(c.P, at, x, y); d.Remaining != 98 {
		t.Errorf("the upsert at a clock a minute behind the row left %d, want 98", d.Remaining)
	}
}
