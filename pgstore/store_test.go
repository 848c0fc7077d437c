package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/pgtest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/jackc/pgx/v5/pgxpool"
)

var algorithms = []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA}

// The tests share one server, started by the first that needs it; each uses its own table.
var (
	serverOnce sync.Once
	server     *pgtest.Server
	tables     atomic.Int64
)

// serverFor returns the shared server, started for the package's first test that needs
// it. It is stopped when that test's process ends; the server's test registers nothing
// else on t.
func serverFor(t *testing.T) *pgtest.Server {
	t.Helper()
	serverOnce.Do(func() { server = pgtest.Start(&processLifetime{T: t}, nil) })
	if server == nil {
		if pgtest.Required() {
			t.Fatal("PostgreSQL could not be started (see the first test's log)")
		}
		t.Skip("PostgreSQL could not be started")
	}
	return server
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.Exit(code)
}

var cleanups []func()

// processLifetime is a testing.TB whose cleanups run when the test binary exits, so one
// server serves every test.
type processLifetime struct{ *testing.T }

func (p *processLifetime) Cleanup(f func()) { cleanups = append(cleanups, f) }

func newPool(t testing.TB, url string, conns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newStore returns a store on a fresh table of the shared server.
func newStore(t *testing.T, opts *Options) (*Store, *pgxpool.Pool) {
	t.Helper()
	srv := serverFor(t)
	pool := newPool(t, srv.URL(), 16)
	o := Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 10 * time.Second}}
	if opts != nil {
		o = *opts
	}
	if o.Table == "" {
		o.Table = fmt.Sprintf("t%d", tables.Add(1))
	}
	s, err := New(context.Background(), pool, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, pool
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) ratelimit.Store {
			s, _ := newStore(t, nil)
			return s
		},
	})
}

// TestDifferential runs random traces, with lowered bursts, through the store and through
// internal/algo at the server instants the store decided at, and requires the same
// decisions: the GCRA upsert's SQL arithmetic and the rows of the other algorithms against
// the step functions.
func TestDifferential(t *testing.T) {
	s, _ := newStore(t, nil)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	ctx := context.Background()
	limits := []ratelimit.Limit{
		{Rate: 3, Period: time.Millisecond},
		{Rate: 7, Period: 10 * time.Millisecond, Burst: 3},
		{Rate: 999_983, Period: 1_234_567 * time.Microsecond, Burst: 17},
		{Rate: 1_000_000_000, Period: time.Millisecond, Burst: 1000},
		{Rate: 1 << 40, Period: 1 << 60, Burst: 1 << 20},
	}
	for li, base := range limits {
		for _, alg := range algorithms {
			l := base
			p, err := algo.NewParams(alg, l)
			if err != nil {
				t.Fatal(err)
			}
			if alg == ratelimit.SlidingWindowLog && p.Rate > 1000 {
				continue
			}
			key := fmt.Sprintf("diff-%d-%v", li, alg)
			var ref reference
			ref.alg = alg
			for i := range 60 {
				if rng.IntN(20) == 0 {
					l.Burst = max(1, l.Capacity(alg)/(1+rng.IntN(3)))
					p, _ = algo.NewParams(alg, l)
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Millisecond))))
				}
				n := uint64(rng.IntN(int(min(p.Cap, 4)) + 1))
				c := rowstateCall(t, key, alg, l, int(n))
				got, now, err := s.take(ctx, c)
				if err != nil {
					t.Fatalf("%v %v step %d: %v", alg, l, i, err)
				}
				want := ref.take(now, p, n)
				if got != want {
					t.Fatalf("%v %v step %d: take(%d) at %d = %+v, want %+v", alg, l, i, n, now, got, want)
				}
			}
		}
	}
}

// TestTakeAll checks that a denied batch takes nothing and an allowed one takes from all.
func TestTakeAll(t *testing.T) {
	s, _ := newStore(t, nil)
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 3, Period: time.Hour}
	reqs := make([]ratelimit.Request, 0, len(algorithms))
	for _, alg := range algorithms {
		reqs = append(reqs, ratelimit.Request{Key: "u", Algorithm: alg, Limit: l, N: 1})
	}
	res := make([]ratelimit.Result, len(reqs))
	if ok, err := s.TakeAll(ctx, reqs, res); !ok || err != nil {
		t.Fatalf("first batch: %v, %v", ok, err)
	}
	// Drain GCRA alone, then the batch is denied by it and takes nothing from the others.
	if r, err := s.Take(ctx, "u", ratelimit.GCRA, l, 2); err != nil || !r.Allowed {
		t.Fatalf("drain: %+v, %v", r, err)
	}
	ok, err := s.TakeAll(ctx, reqs, res)
	if ok || err != nil {
		t.Fatalf("batch after draining GCRA: %v, %v; want denied", ok, err)
	}
	for i, r := range res {
		want := 2
		if algorithms[i] == ratelimit.GCRA {
			want = 0
		}
		if r.Remaining != want || r.Allowed != (want > 0) {
			t.Errorf("%v in the denied batch: %+v, want Remaining %d", algorithms[i], r, want)
		}
	}
	for _, alg := range algorithms[:5] {
		if r, _ := s.Take(ctx, "u", alg, l, 0); r.Remaining != 2 {
			t.Errorf("%v after the denied batch: Remaining %d, want 2 (nothing taken)", alg, r.Remaining)
		}
	}
	dup := []ratelimit.Request{reqs[0], reqs[0]}
	if _, err := s.TakeAll(ctx, dup, make([]ratelimit.Result, 2)); !errors.Is(err, ratelimit.ErrInvalidKey) {
		t.Errorf("duplicate request: %v, want ErrInvalidKey", err)
	}
}

// TestSweep floods the store with unique keys under a short limit: the table holds about
// the keys active within their reset time, not every key seen.
func TestSweep(t *testing.T) {
	s, pool := newStore(t, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 10 * time.Second}, SweepInterval: 50 * time.Millisecond, SweepBatch: 100})
	ctx := context.Background()
	l := ratelimit.Limit{Rate: 1, Period: 20 * time.Millisecond}
	most, total := 0, 0
	deadline := time.Now().Add(2 * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		for i := range 100 {
			if _, err := s.Take(ctx, fmt.Sprintf("flood-%d-%d", round, i), algorithms[i%6], l, 1); err != nil {
				t.Fatal(err)
			}
			total++
		}
		var rows int
		if err := pool.QueryRow(ctx, s.q.count).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		most = max(most, rows)
	}
	time.Sleep(200 * time.Millisecond)
	var rows int
	if err := pool.QueryRow(ctx, s.q.count).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d unique keys: at most %d rows, %d after the flood", total, most, rows)
	if total < 1000 {
		t.Skipf("only %d keys in 2s: too slow a machine to tell", total)
	}
	if most > total/2 || rows > 100 {
		t.Errorf("%d unique keys expiring after 20ms: the table held up to %d rows, %d after; want it flat", total, most, rows)
	}
}

func TestOptions(t *testing.T) {
	srv := serverFor(t)
	pool := newPool(t, srv.URL(), 2)
	if _, err := New(context.Background(), pool, &Options{Table: "x; DROP"}); err == nil {
		t.Error("New accepted a table name that is not an identifier")
	}
	s, _ := newStore(t, &Options{Table: "unlogged_t", Unlogged: true})
	if _, err := s.Take(context.Background(), "k", ratelimit.GCRA, ratelimit.PerSecond(1), 1); err != nil {
		t.Fatal(err)
	}
	var persistence string
	if err := pool.QueryRow(context.Background(), `SELECT relpersistence FROM pg_class WHERE relname = 'unlogged_t'`).Scan(&persistence); err != nil || persistence != "u" {
		t.Errorf("Unlogged table persistence %q, %v; want u", persistence, err)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE unlogged_t_meta SET value = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), pool, &Options{Table: "unlogged_t"}); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("New on a newer schema: %v, want a schema version error", err)
	}
}
