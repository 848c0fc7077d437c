package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

var algorithms = []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA}

var diffLimits = []ratelimit.Limit{
	{Rate: 1, Period: time.Second},
	{Rate: 3, Period: time.Second},
	{Rate: 7, Period: 10 * time.Millisecond, Burst: 3},
	{Rate: 10, Period: time.Minute, Burst: 25},
	{Rate: 999_983, Period: 1_234_567_891 * time.Nanosecond, Burst: 17},
	{Rate: 1_000_000_000, Period: 365 * 24 * time.Hour},
	{Rate: 3, Period: 365 * 24 * time.Hour, Burst: 30},
	{Rate: 999_999_937, Period: 24*time.Hour + 7*time.Nanosecond, Burst: 1_000_000_000},
	{Rate: 5, Period: time.Nanosecond * 3},
	{Rate: 1 << 40, Period: 1 << 60, Burst: 1 << 20},
}

// TestDifferential runs random traces, with limit changes, through the store and through
// memorystore, which runs internal/algo in memory, at the same fake instants, and requires
// the same Results to the nanosecond: the GCRA upsert's SQL arithmetic and the stored rows
// of the other algorithms against the step functions.
func TestDifferential(t *testing.T) {
	skipUnderRace(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	synctest.Test(t, func(t *testing.T) {
		s, _ := openTest(t, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: time.Hour}, SweepInterval: -1})
		ref := memorystore.New(&memorystore.Options{SweepInterval: 1 << 62}) // no ticks through the long sleeps
		defer ref.Close()
		rng := rand.New(rand.NewPCG(seed, 2))
		ctx := context.Background()
		for li, base := range diffLimits {
			for _, alg := range algorithms {
				l := base
				p, err := algo.NewParams(alg, l)
				if err != nil {
					t.Fatal(err)
				}
				if alg == ratelimit.SlidingWindowLog && p.Rate > 1000 {
					continue // keeps one entry per instant: keep the rows small
				}
				key := fmt.Sprintf("diff-%d-%v", li, alg)
				tu := max(int64(p.Period/p.Rate), 1)
				for i := range 150 {
					switch k := rng.IntN(20); {
					case k < 3: // same instant
					case k < 12:
						time.Sleep(time.Duration(rng.Int64N(2*tu + 1)))
					case k < 17:
						time.Sleep(time.Duration(rng.Int64N(min(int64(p.Period), int64(48*time.Hour)) + 1)))
					default:
						time.Sleep(time.Duration(1 + rng.Int64N(1000)))
					}
					if rng.IntN(30) == 0 {
						// A lowered burst applies to the existing state (SetLimit). Not a raised
						// one: a row, like a Redis key, is gone once its state is full again,
						// where memorystore keeps the old level until the key idles out.
						l.Burst = max(1, l.Capacity(alg)/(1+rng.IntN(3)))
						p, _ = algo.NewParams(alg, l)
					}
					n := 0
					switch k := rng.IntN(10); {
					case k == 0:
					case k < 6:
						n = 1
					default:
						n = rng.IntN(int(min(p.Cap, 1<<20)) + 1)
					}
					want, werr := ref.Take(ctx, key, alg, l, n)
					got, err := s.Take(ctx, key, alg, l, n)
					if err != nil || werr != nil {
						t.Fatalf("%v %v step %d: Take(%d) error %v (memorystore: %v)", alg, l, i, n, err, werr)
					}
					if got != want {
						t.Fatalf("%v %v step %d: Take(%d) = %+v, want %+v (memorystore)", alg, l, i, n, got, want)
					}
				}
			}
		}
	})
}

// TestTakeAll checks batches against memorystore's at the same instants: all or nothing,
// and the Results of a denied batch.
func TestTakeAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := openTest(t, testOptions())
		ref := memorystore.New(nil)
		defer ref.Close()
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		l := ratelimit.Limit{Rate: 5, Period: time.Second, Burst: 3}
		for i := range 200 {
			var reqs []ratelimit.Request
			for j, alg := range algorithms {
				if rng.IntN(2) == 0 {
					reqs = append(reqs, ratelimit.Request{Key: fmt.Sprint("user", j%2), Algorithm: alg, Limit: l, N: rng.IntN(3)})
				}
			}
			got, want := make([]ratelimit.Result, len(reqs)), make([]ratelimit.Result, len(reqs))
			ok, err := s.TakeAll(ctx, reqs, got)
			wok, werr := ref.TakeAll(ctx, reqs, want)
			if err != nil || werr != nil {
				t.Fatalf("batch %d: %v (memorystore %v)", i, err, werr)
			}
			if ok != wok || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("batch %d %+v: %v %+v, want %v %+v", i, reqs, ok, got, wok, want)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		}
		dup := []ratelimit.Request{{Key: "a", Algorithm: ratelimit.GCRA, Limit: l, N: 1}, {Key: "a", Algorithm: ratelimit.GCRA, Limit: l, N: 1}}
		if _, err := s.TakeAll(ctx, dup, make([]ratelimit.Result, 2)); !errors.Is(err, ratelimit.ErrInvalidKey) {
			t.Errorf("duplicate request: %v, want ErrInvalidKey", err)
		}
	})
}

// TestReopen checks that the state survives closing the store and opening the file again.
func TestReopen(t *testing.T) {
	s, path := openTest(t, testOptions())
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 10, Period: time.Hour}
	for _, alg := range algorithms {
		for range 7 {
			if r, err := s.Take(ctx, "k", alg, l, 1); err != nil || !r.Allowed {
				t.Fatalf("%v: %+v, %v", alg, r, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "k", ratelimit.GCRA, l, 1); !errors.Is(err, ratelimit.ErrClosed) {
		t.Fatalf("Take after Close: %v, want ErrClosed", err)
	}
	s2, err := Open(path, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, alg := range algorithms {
		r, err := s2.Take(ctx, "k", alg, l, 0)
		if err != nil || r.Remaining != 3 {
			t.Errorf("%v after reopening: %+v, %v; want 3 remaining", alg, r, err)
		}
	}
}

// TestLocked holds the database's write lock from another connection: calls then wait out
// the timeout and are answered by policy, the breaker opens, and the store recovers when
// the lock is released.
func TestLocked(t *testing.T) {
	var reported int
	s, path := openTest(t, &Options{Failure: Failure{Policy: ratelimit.FailOpen, Timeout: 50 * time.Millisecond, BreakerThreshold: 2, BreakerCooldown: 100 * time.Millisecond, OnError: func(error) { reported++ }}})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1, Period: time.Hour}
	if r, _ := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1); !r.Allowed {
		t.Fatal("first call denied")
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1)
		if err != nil || !r.Allowed {
			t.Fatalf("locked call %d under FailOpen = %+v, %v; want allowed", i, r, err)
		}
	}
	if st := s.Stats(); st.Failures != 2 || st.PolicyAnswers != 4 || !st.BreakerOpen || reported != 4 {
		t.Fatalf("Stats = %+v, reported %d; want 2 failures, 4 policy answers, breaker open", st, reported)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the cool-down: real time, the database's locks are real
	if r, err := s.Take(ctx, "k", ratelimit.TokenBucket, l, 1); err != nil || r.Allowed {
		t.Fatalf("after the lock: %+v, %v; want the database's denial", r, err)
	}
	if s.Stats().BreakerOpen {
		t.Error("breaker still open after a successful probe")
	}
}

// TestSweep floods the store with unique keys under a short limit: the table stays at about
// the keys active within their reset time, not the keys ever seen.
func TestSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := openTest(t, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: time.Hour}, SweepInterval: 100 * time.Millisecond, SweepBatch: 50})
		ctx := context.Background()
		l := ratelimit.Limit{Rate: 1, Period: 100 * time.Millisecond}
		const perRound, rounds = 300, 30
		most := 0
		for round := range rounds {
			for i := range perRound {
				alg := algorithms[i%len(algorithms)]
				if _, err := s.Take(ctx, fmt.Sprintf("flood-%d-%d", round, i), alg, l, 1); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(50 * time.Millisecond)
			synctest.Wait()
			var rows int
			if err := s.db.QueryRow(s.q.count).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			most = max(most, rows)
		}
		if most > 3*perRound {
			t.Errorf("the table held up to %d rows after %d unique keys, %d per 50ms round, each expiring after 100ms; want at most %d",
				most, perRound*rounds, perRound, 3*perRound)
		}
		t.Logf("at most %d rows for %d keys", most, perRound*rounds)
	})
}

func TestOptions(t *testing.T) {
	if _, err := Open(t.TempDir()+"/x.db", &Options{Table: "bad name"}); err == nil {
		t.Error("Open accepted a table name with a space")
	}
	s, path := openTest(t, &Options{Table: "limits_2"})
	if _, err := s.Take(context.Background(), "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); err != nil {
		t.Fatal(err)
	}
	// A database from a newer version of the store is refused.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE "limits_2_meta" SET value = 99 WHERE name = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	if _, err := New(db, &Options{Table: "limits_2"}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("New on a newer schema: %v, want a schema version error", err)
	}
}
