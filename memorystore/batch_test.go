package memorystore

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

func TestTakeAllIsAllOrNothing(t *testing.T) {
	for _, alg := range algorithms {
		s := newStore(t, nil)
		reqs := []ratelimit.Request{
			{Key: "ip:1", Algorithm: alg, Limit: ratelimit.PerHour(5), N: 2},
			{Key: "user:1", Algorithm: alg, Limit: ratelimit.PerHour(3), N: 2},
		}
		results := make([]ratelimit.Result, 2)
		ok, err := s.TakeAll(ctx, reqs, results)
		if err != nil || !ok || results[0].Remaining != 3 || results[1].Remaining != 1 {
			t.Fatalf("%v: first TakeAll = %v, %v, %+v; want both taken (3 and 1 left)", alg, ok, err, results)
		}
		// user:1 has 1 left and denies 2: ip:1 must keep its 3.
		ok, err = s.TakeAll(ctx, reqs, results)
		if err != nil || ok {
			t.Fatalf("%v: second TakeAll = %v, %v; want denied", alg, ok, err)
		}
		if !results[0].Allowed || results[0].Remaining != 3 || results[0].RetryAfter != 0 {
			t.Errorf("%v: ip:1 in a denied batch = %+v; want allowed alone, 3 available now", alg, results[0])
		}
		if results[1].Allowed || results[1].Remaining != 1 || results[1].RetryAfter <= 0 {
			t.Errorf("%v: user:1 in a denied batch = %+v; want denied with 1 left and a RetryAfter", alg, results[1])
		}
		if r, _ := s.Take(ctx, "ip:1", alg, ratelimit.PerHour(5), 0); r.Remaining != 3 {
			t.Errorf("%v: ip:1 has %d left after a denied batch, want 3: the denial polluted it", alg, r.Remaining)
		}
	}
}

func req(key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) ratelimit.Request {
	return ratelimit.Request{Key: key, Algorithm: alg, Limit: l, N: n}
}

func TestTakeAllErrors(t *testing.T) {
	s := newStore(t, nil)
	lim := ratelimit.PerSecond(5)
	for name, tt := range map[string]struct {
		reqs []ratelimit.Request
		want error
	}{
		"duplicate": {[]ratelimit.Request{req("k", ratelimit.GCRA, lim, 1), req("k", ratelimit.GCRA, lim, 1)}, ratelimit.ErrInvalidKey},
		"empty key": {[]ratelimit.Request{req("k", ratelimit.GCRA, lim, 1), req("", ratelimit.GCRA, lim, 1)}, ratelimit.ErrInvalidKey},
		"bad cost":  {[]ratelimit.Request{req("k", ratelimit.GCRA, lim, 6)}, ratelimit.ErrInvalidCost},
		"bad limit": {[]ratelimit.Request{req("k", ratelimit.GCRA, ratelimit.Limit{}, 1)}, ratelimit.ErrInvalidLimit},
		"bad alg":   {[]ratelimit.Request{req("k", 0, lim, 1)}, ratelimit.ErrInvalidAlgorithm},
	} {
		if _, err := s.TakeAll(ctx, tt.reqs, make([]ratelimit.Result, len(tt.reqs))); !errors.Is(err, tt.want) {
			t.Errorf("%s: TakeAll error = %v, want %v", name, err, tt.want)
		}
	}
	if _, err := s.TakeAll(ctx, make([]ratelimit.Request, 2), make([]ratelimit.Result, 1)); err == nil {
		t.Error("TakeAll with too few results: nil error")
	}
	// The same key under two algorithms is two states: allowed.
	reqs := []ratelimit.Request{req("k", ratelimit.GCRA, lim, 1), req("k", ratelimit.FixedWindow, lim, 1)}
	if ok, err := s.TakeAll(ctx, reqs, make([]ratelimit.Result, 2)); !ok || err != nil {
		t.Errorf("one key, two algorithms: TakeAll = %v, %v; want allowed", ok, err)
	}
}

// TestTakeAllExactUnderContention runs 64 goroutines for 8 users against a per-user limit
// and a global one: the global limit admits exactly its capacity and no user exceeds its own.
func TestTakeAllExactUnderContention(t *testing.T) {
	s := newStore(t, nil)
	perUser, global := ratelimit.PerHour(30), ratelimit.PerHour(200)
	var admitted atomic.Int64
	var perUserAdmitted [8]atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			user := g % 8
			reqs := []ratelimit.Request{
				{Key: "user:" + strconv.Itoa(user), Algorithm: ratelimit.TokenBucket, Limit: perUser, N: 1},
				{Key: "global", Algorithm: ratelimit.SlidingWindowLog, Limit: global, N: 1},
			}
			results := make([]ratelimit.Result, 2)
			for range 20 {
				ok, err := s.TakeAll(ctx, reqs, results)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
					perUserAdmitted[user].Add(1)
				}
			}
		})
	}
	wg.Wait()
	// 8 users × 30 = 240 > 200: the global limit binds.
	if got := admitted.Load(); got != 200 {
		t.Errorf("%d admitted, want exactly the global 200", got)
	}
	for u := range perUserAdmitted {
		if got := perUserAdmitted[u].Load(); got > 30 {
			t.Errorf("user %d admitted %d, above its 30", u, got)
		}
	}
	if r, _ := s.Take(ctx, "global", ratelimit.SlidingWindowLog, global, 0); r.Remaining != 0 {
		t.Errorf("global has %d left, want 0", r.Remaining)
	}
}

func TestTakeAllDoesNotAllocate(t *testing.T) {
	s := newStore(t, nil)
	lim := ratelimit.Limit{Rate: 1_000_000_000, Period: time.Second}
	reqs := []ratelimit.Request{
		{Key: "ip:203.0.113.7", Algorithm: ratelimit.GCRA, Limit: lim, N: 1},
		{Key: "user:alice", Algorithm: ratelimit.TokenBucket, Limit: lim, N: 1},
		{Key: "global", Algorithm: ratelimit.SlidingWindowCounter, Limit: lim, N: 1},
	}
	results := make([]ratelimit.Result, len(reqs))
	s.TakeAll(ctx, reqs, results)
	if allocs := testing.AllocsPerRun(1000, func() { s.TakeAll(ctx, reqs, results) }); allocs != 0 {
		t.Errorf("TakeAll of 3 existing keys allocates %v times, want 0", allocs)
	}
}
