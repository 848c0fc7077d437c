package pgstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/pgtest"
)

// TestLocked holds a key's row locked from another transaction past the store's Timeout:
// the calls are answered by the local store (FailLocal), the breaker opens after two
// failures, and once the row is released and the cool-down passed the database decides
// again, from the state it kept.
func TestLocked(t *testing.T) {
	const timeout, cooldown = 300 * time.Millisecond, 300 * time.Millisecond
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1, Period: time.Hour}
	for _, alg := range []ratelimit.Algorithm{ratelimit.TokenBucket, ratelimit.GCRA} {
		t.Run(alg.String(), func(t *testing.T) {
			var reported int
			s, pool := newStore(t, &Options{Failure: Failure{Policy: ratelimit.FailLocal, Timeout: timeout,
				BreakerThreshold: 2, BreakerCooldown: cooldown, OnError: func(error) { reported++ }}})
			if r, err := s.Take(ctx, "locked", alg, l, 1); err != nil || !r.Allowed {
				t.Fatalf("first call = (%+v, %v), want allowed by the database", r, err)
			}
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, s.q.lock, []byte("locked"), int16(alg)); err != nil {
				t.Fatal(err)
			}
			// The local store has never seen the key: it allows its one unit, then denies.
			for i, want := range []bool{true, false, false, false} {
				start := time.Now()
				r, err := s.Take(ctx, "locked", alg, l, 1)
				if err != nil || r.Allowed != want {
					t.Fatalf("locked call %d = (%+v, %v), want Allowed %v from the local store", i, r, err, want)
				}
				if took := time.Since(start); i < 2 && took < timeout {
					t.Errorf("locked call %d returned after %v, before the %v timeout: it did not wait for the row", i, took, timeout)
				}
			}
			st := s.Stats()
			if st.Failures != 2 || st.PolicyAnswers != 4 || !st.BreakerOpen || reported != 4 {
				t.Fatalf("Stats = %+v, %d errors reported; want 2 failures, 4 policy answers, the breaker open, 4 reported", st, reported)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			waitForDatabase(t, s, "locked", alg, l)
		})
	}
}

// TestUnreachable stops the server under a store with FailOpen: calls are allowed by the
// policy without waiting out the timeout once the breaker is open, and after the server is
// back the database decides again, from the state it kept across the stop.
func TestUnreachable(t *testing.T) {
	srv := pgtest.Start(t, nil)
	pool := newPool(t, srv.URL(), 4)
	s, err := New(context.Background(), pool, &Options{Failure: Failure{Policy: ratelimit.FailOpen, Timeout: time.Second,
		BreakerThreshold: 2, BreakerCooldown: 300 * time.Millisecond}, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1, Period: time.Hour}
	if r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1); err != nil || !r.Allowed {
		t.Fatalf("first call = (%+v, %v), want allowed by the database", r, err)
	}
	srv.Stop()
	for i := range 5 {
		r, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1)
		if err != nil || !r.Allowed {
			t.Fatalf("call %d with the server down = (%+v, %v), want allowed by FailOpen", i, r, err)
		}
	}
	if st := s.Stats(); st.Failures != 2 || st.PolicyAnswers != 5 || !st.BreakerOpen {
		t.Fatalf("Stats = %+v, want 2 failures, 5 policy answers, the breaker open", st)
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with the server down = nil, want an error")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitForDatabase(t, s, "k", ratelimit.GCRA, l)
}

// waitForDatabase takes a unit of key, whose one unit the database holds taken, until the
// database answers: a denial with the breaker closed. The first probes after a cool-down
// may meet connections the failure broke, or a server still starting; it answers within
// a few cool-downs.
func waitForDatabase(t *testing.T, s *Store, key string, alg ratelimit.Algorithm, l ratelimit.Limit) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := s.Take(context.Background(), key, alg, l, 1)
		if err == nil && !r.Allowed && !s.Stats().BreakerOpen {
			return
		}
		last = fmt.Sprintf("(%+v, %v), %+v", r, err, s.Stats())
	}
	t.Fatalf("the database did not answer within 30s; last call %s", last)
}
