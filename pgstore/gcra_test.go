package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestGCRAWaitedCall checks that a GCRA call that read the server's clock and then waited
// for a row another transaction held is decided after that transaction's decision, at its
// instant: it leaves one unit fewer, not two.
func TestGCRAWaitedCall(t *testing.T) {
	s, pool := newStore(t, nil)
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 100, Period: time.Hour}
	c := rowstateCall(t, "waited", ratelimit.GCRA, l, 1)
	g := rowstate.GCRAArgs(c.P, c.Cost)

	// The holder inserts the key's row and keeps it uncommitted, so the call's upsert,
	// having read its clock, waits on it.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, s.q.placeholder, []byte(c.Key), int16(c.Alg)); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		r   ratelimit.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := s.Take(ctx, c.Key, c.Alg, l, 1)
		done <- answer{r, err}
	}()
	waitForLockWaiter(t, pool)

	// The holder decides one unit at a later instant and commits.
	var at, x, held int64
	if err := tx.QueryRow(ctx, s.q.gcra, []byte(c.Key), int16(c.Alg), g.Rate, g.NQ, g.NR, g.CQ, g.CR).Scan(&at, &x, &held); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil || !a.r.Allowed || a.r.Remaining != 98 {
		t.Errorf("the waiting call = (%+v, %v), want allowed with 98 left, after the holder's unit", a.r, a.err)
	}
	row, found, _, err := s.peek(ctx, c)
	if err != nil || !found || row.Y < held {
		t.Errorf("the row after both = (%+v, found %v, %v), want y at or after the holder's instant %d", row, found, err, held)
	}
}

// waitForLockWaiter returns once a session of the server waits for a lock, failing t
// after ten seconds.
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("no session waited for the held row within 10s")
}
