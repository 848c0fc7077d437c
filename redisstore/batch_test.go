package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// redistestStartKilled returns the address of a server that was started and killed: every
// dial is refused.
func redistestStartKilled(t *testing.T) string {
	srv := redistest.Start(t)
	srv.Kill()
	return srv.Addr()
}

// refBatch is the reference of TakeAll: every request decided on the current state, all
// taken if each passes, none otherwise, and then a request that would have passed reports
// its decision with n = 0.
func refBatch(refs []*reference, now int64, ns []uint64) (bool, []algo.Decision) {
	ds := make([]algo.Decision, len(refs))
	all := true
	for i, r := range refs {
		ds[i] = r.check(now, ns[i])
		all = all && ds[i].Allowed
	}
	for i, r := range refs {
		switch {
		case all:
			ds[i] = r.take(now, ns[i])
		case ds[i].Allowed && ns[i] > 0:
			ds[i] = r.check(now, 0)
		}
	}
	return all, ds
}

// check is take without the effect.
func (r *reference) check(now int64, n uint64) algo.Decision {
	if r.alg == ratelimit.SlidingWindowLog {
		return r.log.Check(now, r.p, n)
	}
	s := r.s
	if r.new {
		s = algo.Init(r.alg, r.p, now)
	}
	_, d := algo.Take(r.alg, s, now, r.p, n)
	return d
}

// TestTakeAllDifferential runs random batches at simulated instants through the batch
// script and through the reference built on internal/algo.
func TestTakeAllDifferential(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	testTakeAllDifferential(t, s)
}

func testTakeAllDifferential(t *testing.T, s *Store) {
	simulate(s)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	limits := []ratelimit.Limit{
		{Rate: 3, Period: time.Second},
		{Rate: 10, Period: 100 * time.Millisecond, Burst: 4},
		{Rate: 1000, Period: time.Hour, Burst: 20},
		{Rate: 7, Period: 70 * time.Millisecond},
	}
	// Requests are on one user key so that they share a Cluster slot; each (algorithm,
	// limit) pair is one request slot in a batch.
	type slot struct {
		alg   ratelimit.Algorithm
		limit ratelimit.Limit
		ref   *reference
	}
	var slots []*slot
	for i, alg := range algorithms {
		l := limits[i%len(limits)]
		slots = append(slots, &slot{alg: alg, limit: l, ref: &reference{alg: alg, p: mustParams(t, alg, l), new: true}})
	}
	now := int64(1_763_000_000_000_000) + rng.Int64N(1_000_000_000)
	var passed int
	defer func() { t.Logf("%d of 400 batches passed", passed) }()
	for step := 0; step < 400; step++ {
		now += rng.Int64N(40_000)
		if rng.IntN(10) == 0 {
			now -= rng.Int64N(20_000)
		}
		perm := rng.Perm(len(slots))[:1+rng.IntN(4)]
		reqs := make([]ratelimit.Request, len(perm))
		refs := make([]*reference, len(perm))
		ns := make([]uint64, len(perm))
		for i, k := range perm {
			sl := slots[k]
			n := uint64(rng.IntN(3))
			reqs[i] = ratelimit.Request{Key: "user", Algorithm: sl.alg, Limit: sl.limit, N: int(n)}
			refs[i], ns[i] = sl.ref, n
		}
		results := make([]ratelimit.Result, len(reqs))
		got, err := s.TakeAll(atInstant(ctx, now), reqs, results)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want, ds := refBatch(refs, now*1000, ns)
		if want {
			passed++
		}
		if got != want {
			t.Fatalf("step %d at %d µs: TakeAll(%v) = %v, want %v", step, now, reqs, got, want)
		}
		for i := range reqs {
			if w := ds[i].Result(refs[i].p); results[i] != w {
				t.Fatalf("step %d at %d µs: request %d (%v %v n=%d) = %+v, want %+v", step, now, i, reqs[i].Algorithm, reqs[i].Limit, reqs[i].N, results[i], w)
			}
		}
	}
}

func TestTakeAllErrors(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, nil)
	ctx := context.Background()
	l := ratelimit.PerSecond(5)
	if _, err := s.TakeAll(ctx, []ratelimit.Request{{Key: "k", Algorithm: ratelimit.GCRA, Limit: l, N: 1}}, nil); err == nil {
		t.Error("TakeAll with too few results succeeded")
	}
	twice := []ratelimit.Request{{Key: "k", Algorithm: ratelimit.GCRA, Limit: l, N: 1}, {Key: "k", Algorithm: ratelimit.GCRA, Limit: l, N: 1}}
	if _, err := s.TakeAll(ctx, twice, make([]ratelimit.Result, 2)); !errors.Is(err, ratelimit.ErrInvalidKey) {
		t.Errorf("TakeAll with a key twice = %v, want ErrInvalidKey", err)
	}
	bad := []ratelimit.Request{{Key: "k", Algorithm: ratelimit.GCRA, Limit: l, N: 9}}
	if _, err := s.TakeAll(ctx, bad, make([]ratelimit.Result, 1)); !errors.Is(err, ratelimit.ErrInvalidCost) {
		t.Errorf("TakeAll with n above capacity = %v, want ErrInvalidCost", err)
	}
	if ok, err := s.TakeAll(ctx, nil, nil); !ok || err != nil {
		t.Errorf("empty TakeAll = %v, %v; want true, nil", ok, err)
	}
	// A denial by one limit takes nothing from the other.
	reqs := []ratelimit.Request{
		{Key: "a", Algorithm: ratelimit.TokenBucket, Limit: ratelimit.PerHour(10), N: 1}, // no refill while the test runs
		{Key: "b", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerHour(1), N: 1},
	}
	res := make([]ratelimit.Result, 2)
	for i, want := range []bool{true, false, false} {
		ok, err := s.TakeAll(ctx, reqs, res)
		if err != nil || ok != want {
			t.Fatalf("TakeAll %d = %v, %v; want %v", i, ok, err, want)
		}
	}
	if res[0].Remaining != 9 || !res[0].Allowed || res[1].Allowed {
		t.Fatalf("after two denied batches: %+v, want the bucket at 9, the window denied", res)
	}
}

// testTakeAllCluster checks TakeAll on a Cluster: one user key works, two keys in two
// slots are refused with ErrUnsupported, and slot agrees with CLUSTER KEYSLOT.
func testTakeAllCluster(t *testing.T, s *Store, keyslot func(string) (int64, error)) {
	ctx := context.Background()
	l := ratelimit.PerSecond(5)
	same := []ratelimit.Request{
		{Key: "user:1", Algorithm: ratelimit.GCRA, Limit: l, N: 1},
		{Key: "user:1", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerMinute(100), N: 1},
	}
	if ok, err := s.TakeAll(ctx, same, make([]ratelimit.Result, 2)); !ok || err != nil {
		t.Fatalf("TakeAll on one key = %v, %v", ok, err)
	}
	apart := []ratelimit.Request{{Key: "user:1", Algorithm: ratelimit.GCRA, Limit: l, N: 1}}
	for i := 2; ; i++ {
		k := fmt.Sprint("user:", i)
		if slot(hashTag(s.key(k, ratelimit.GCRA))) != slot(hashTag(s.key("user:1", ratelimit.GCRA))) {
			apart = append(apart, ratelimit.Request{Key: k, Algorithm: ratelimit.GCRA, Limit: l, N: 1})
			break
		}
	}
	if _, err := s.TakeAll(ctx, apart, make([]ratelimit.Result, 2)); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("TakeAll across slots = %v, want ErrUnsupported", err)
	}
	for _, k := range append(oddKeys()[:16], "user:1", "a", strings.Repeat("x", 300)) {
		rk := s.key(k, ratelimit.GCRA)
		want, err := keyslot(rk)
		if err != nil {
			t.Fatal(err)
		}
		if got := slot(hashTag(rk)); int64(got) != want {
			t.Fatalf("slot(%q) = %d, CLUSTER KEYSLOT says %d", rk, got, want)
		}
	}
}

// TestTakeAllPolicy checks that a batch is answered by policy while Redis is down.
func TestTakeAllPolicy(t *testing.T) {
	t.Parallel()
	srv := redistestStartKilled(t)
	ctx := context.Background()
	reqs := []ratelimit.Request{
		{Key: "a", Algorithm: ratelimit.TokenBucket, Limit: ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}, N: 1},
		{Key: "b", Algorithm: ratelimit.FixedWindow, Limit: ratelimit.PerHour(5), N: 2},
	}
	res := make([]ratelimit.Result, 2)
	for _, p := range []ratelimit.FailPolicy{ratelimit.FailLocal, ratelimit.FailOpen, ratelimit.FailClosed, ratelimit.FailError} {
		s := newStoreOn(t, newClient(t, srv), &Options{Policy: p, MaxRetries: -1, OnError: func(error) {}})
		var oks []bool
		for range 3 {
			ok, err := s.TakeAll(ctx, reqs, res)
			if (err != nil) != (p == ratelimit.FailError) {
				t.Fatalf("%v: TakeAll error %v", p, err)
			}
			oks = append(oks, ok)
		}
		want := map[ratelimit.FailPolicy]string{ratelimit.FailLocal: "[true true false]", ratelimit.FailOpen: "[true true true]", ratelimit.FailClosed: "[false false false]", ratelimit.FailError: "[false false false]"}[p]
		if fmt.Sprint(oks) != want {
			t.Errorf("%v: TakeAll verdicts %v, want %s", p, oks, want)
		}
	}
}
