package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
	"github.com/go-ratelimit/ratelimit/internal/storetest"
	"github.com/redis/go-redis/v9"
)

// leaseChildEnv carries a leaseRun to TestLeaseChild in a child process.
const leaseChildEnv = "REDISSTORE_LEASE_CHILD"

// leaseRun is one multi-process run: procs copies of the test binary, each with
// goroutines goroutines taking units of keys keys (goroutine g's i-th call takes key
// (g + i·goroutines) mod keys) for dur from start, through LeaseStores sharing one
// redis-server.
type leaseRun struct {
	addr, prefix string
	alg          ratelimit.Algorithm
	keys         int
	limit        ratelimit.Limit
	accuracy     float64
	start        time.Time
	dur          time.Duration
	snapshots    bool // print the counts every 20ms, for a child that is killed
}

const (
	leaseProcs      = 4
	leaseGoroutines = 16
)

func (r leaseRun) encode() string {
	return strings.Join([]string{r.addr, r.prefix, strconv.Itoa(int(r.alg)), strconv.Itoa(r.keys),
		r.limit.String(), strconv.FormatFloat(r.accuracy, 'g', -1, 64),
		strconv.FormatInt(r.start.UnixNano(), 10), r.dur.String(), strconv.FormatBool(r.snapshots)}, ";")
}

func decodeLeaseRun(s string) (leaseRun, error) {
	f := strings.Split(s, ";")
	if len(f) != 9 {
		return leaseRun{}, fmt.Errorf("bad %s=%q", leaseChildEnv, s)
	}
	var r leaseRun
	var errs [6]error
	var alg, start int64
	r.addr, r.prefix = f[0], f[1]
	alg, errs[0] = strconv.ParseInt(f[2], 10, 8)
	r.alg = ratelimit.Algorithm(alg)
	r.keys, errs[1] = strconv.Atoi(f[3])
	r.limit, errs[2] = ratelimit.ParseLimit(f[4])
	r.accuracy, errs[3] = strconv.ParseFloat(f[5], 64)
	start, errs[4] = strconv.ParseInt(f[6], 10, 64)
	r.start = time.Unix(0, start)
	r.dur, errs[5] = time.ParseDuration(f[7])
	r.snapshots = f[8] == "true"
	for _, err := range errs {
		if err != nil {
			return leaseRun{}, err
		}
	}
	return r, nil
}

// window is a (key, window index) pair of admitted counts.
type window struct{ key, idx int }

// span is a key and a range of windows, one of which holds units admitted by calls that
// straddled a window boundary (see redistest.WindowOf).
type span struct{ key, lo, hi int }

// TestLeaseChild is one process of a multi-process run; it does nothing unless started by
// one. It prints "w KEY WINDOW N" for every (key, window) with N units admitted, the
// window being the epoch-aligned window of the lease that admitted them (the end of the
// lease's window is the instant after the call plus ResetAfter, rounded to the Period),
// then "slow N", the calls that took over a millisecond, and "calls N". A denied goroutine
// waits RetryAfter, at most a millisecond, as a client would.
func TestLeaseChild(t *testing.T) {
	r, err := decodeLeaseRun(storetest.ChildSpec(t, leaseChildEnv))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr, ContextTimeoutEnabled: true, DialTimeout: time.Second,
		DialerRetries: 1, MaxRetries: -1, PoolSize: 4})
	defer c.Close()
	var nerr atomic.Int64
	s := NewLease(c, &LeaseOptions{
		Options: Options{OnError: func(err error) {
			if nerr.Add(1) <= 3 {
				fmt.Fprintf(os.Stderr, "error %d %v\n", nerr.Load(), err)
			}
		}, Prefix: r.prefix, Timeout: 5 * time.Second, Policy: ratelimit.FailClosed, BreakerCooldown: 200 * time.Millisecond},
		Accuracy: r.accuracy, Interval: 50 * time.Millisecond,
	})
	names := make([]string, r.keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	period := r.limit.Period
	var mu sync.Mutex
	total, amb := map[window]int{}, map[span]int{}
	var slow, calls int
	out := bufio.NewWriter(os.Stdout)
	stop := make(chan struct{})
	var snap sync.WaitGroup
	if r.snapshots {
		snap.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				mu.Lock()
				for w, n := range total {
					fmt.Fprintf(os.Stdout, "s %d %d %d\n", w.key, w.idx, n)
				}
				for w, n := range amb {
					fmt.Fprintf(os.Stdout, "t %d %d %d %d\n", w.key, w.lo, w.hi, n)
				}
				mu.Unlock()
			}
		})
	}
	// Ready: the parent answers with the instant to start at, once every child is ready.
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	startNs, perr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil || perr != nil {
		t.Fatalf("start instant %q: %v %v", line, err, perr)
	}
	r.start = time.Unix(0, startNs)
	time.Sleep(time.Until(r.start))
	deadline := r.start.Add(r.dur)
	var wg sync.WaitGroup
	for g := range leaseGoroutines {
		wg.Go(func() {
			mine, myAmb := map[window]int{}, map[span]int{}
			var mySlow, myCalls int
			flush := func() {
				mu.Lock()
				for w, n := range mine {
					total[w] += n
				}
				for w, n := range myAmb {
					amb[w] += n
				}
				clear(myAmb)
				slow, calls = slow+mySlow, calls+myCalls
				mu.Unlock()
				clear(mine)
				mySlow, myCalls = 0, 0
			}
			for i := 0; ; i++ {
				k := (g + i*leaseGoroutines) % r.keys
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				res, err := s.Take(context.Background(), names[k], r.alg, r.limit, 1)
				t1 := time.Now()
				myCalls++
				if t1.Sub(t0) > time.Millisecond {
					mySlow++
				}
				if err != nil {
					t.Error(err)
					return
				}
				if !res.Allowed {
					time.Sleep(min(res.RetryAfter, time.Millisecond)) // as a client would
				} else {
					lo, hi := redistest.WindowOf(t0, t1, res.ResetAfter, period)
					if lo == hi {
						mine[window{k, int(lo)}]++
					} else {
						myAmb[span{k, int(lo), int(hi)}]++
					}
				}
				if r.snapshots && i%64 == 0 {
					flush()
				}
			}
			flush()
		})
	}
	wg.Wait()
	close(stop)
	snap.Wait()
	if err := s.Close(context.Background()); err != nil {
		t.Log(err)
	}
	for w, n := range total {
		fmt.Fprintf(out, "w %d %d %d\n", w.key, w.idx, n)
	}
	for w, n := range amb {
		fmt.Fprintf(out, "a %d %d %d %d\n", w.key, w.lo, w.hi, n)
	}
	st := s.Stats()
	fmt.Fprintf(out, "slow %d\ncalls %d\nscripts %d\nrounds %d\nlost %d\n", slow, calls, st.Scripts, st.Rounds, st.Lost)
	out.Flush()
}

// leaseResult is what the children of a run reported, summed.
type leaseResult struct {
	admitted                           map[window]int
	ambiguous                          map[span]int // units of calls that straddled a boundary
	slow, calls, scripts, rounds, lost int
}

// runLease runs r in leaseProcs child processes, started together once all are ready
// (r.start is set then); fault, when not nil, runs in the parent meanwhile and may kill
// child 0 (it gets the children). A killed child contributes its last snapshot.
func runLease(t *testing.T, r *leaseRun, fault func(children []*storetest.Child)) leaseResult {
	t.Helper()
	children := make([]*storetest.Child, leaseProcs)
	for i := range children {
		rr := *r
		rr.snapshots = r.snapshots && i == 0
		children[i] = storetest.StartChild(t, "TestLeaseChild", leaseChildEnv, rr.encode())
	}
	for i, c := range children {
		if !c.WaitOutput(func(out string) bool { return strings.Contains(out, "\nready\n") }, 30*time.Second) {
			t.Fatalf("child %d not ready after 30s: %s", i, c.Output())
		}
	}
	r.start = time.Now().Add(50 * time.Millisecond)
	for _, c := range children {
		fmt.Fprintln(c.Stdin(), r.start.UnixNano())
		c.Stdin().Close()
	}
	if fault != nil {
		fault(children)
	}
	res := leaseResult{admitted: map[window]int{}, ambiguous: map[span]int{}}
	for i, c := range children {
		err := c.Wait()
		killed := r.snapshots && i == 0
		if err != nil && !killed {
			t.Fatalf("child %d: %v\n%s", i, err, c.Output())
		}
		last, lastAmb := map[window]int{}, map[span]int{}
		for _, line := range strings.Split(c.Output(), "\n") {
			f := strings.Fields(line)
			var v [4]int
			for j := 1; j < len(f) && j <= 4; j++ {
				v[j-1], _ = strconv.Atoi(f[j])
			}
			switch {
			case len(f) == 5 && f[0] == "a" && !killed:
				res.ambiguous[span{v[0], v[1], v[2]}] += v[3]
			case len(f) == 5 && f[0] == "t":
				lastAmb[span{v[0], v[1], v[2]}] = max(lastAmb[span{v[0], v[1], v[2]}], v[3])
			case len(f) == 4 && f[0] == "w" && !killed:
				res.admitted[window{v[0], v[1]}] += v[2]
			case len(f) == 4 && f[0] == "s":
				last[window{v[0], v[1]}] = max(last[window{v[0], v[1]}], v[2])
			case len(f) == 2 && f[0] == "slow":
				res.slow += v[0]
			case len(f) == 2 && f[0] == "calls":
				res.calls += v[0]
			case len(f) == 2 && f[0] == "scripts":
				res.scripts += v[0]
			case len(f) == 2 && f[0] == "rounds":
				res.rounds += v[0]
			case len(f) > 0 && f[0] == "error":
				t.Logf("child %d: %s", i, line)
			case len(f) == 2 && f[0] == "lost":
				res.lost += v[0]
			}
		}
		for w, n := range last {
			res.admitted[w] += n
		}
		for w, n := range lastAmb {
			res.ambiguous[w] += n
		}
	}
	return res
}

// check asserts that no (key, window) admitted more than allow(window) units, and returns
// the mean fill of the windows wholly inside the run (admitted over the limit).
func (res leaseResult) check(t *testing.T, r *leaseRun, allow func(idx int) int) float64 {
	t.Helper()
	period := int64(r.limit.Period)
	first := int((r.start.UnixNano() + period - 1) / period) // the first whole window
	last := int(r.start.Add(r.dur).UnixNano()/period) - 1
	// A unit whose window is ambiguous counts in the first of its windows with room: the
	// bound holds if some attribution keeps every window within it.
	straddled := 0
	for sp, n := range res.ambiguous {
		straddled += n
		for ; n > 0; n-- {
			w := window{sp.key, sp.lo}
			for i := sp.lo; i <= sp.hi; i++ {
				if c := (window{sp.key, i}); res.admitted[c] < allow(i) {
					w = c
					break
				}
			}
			res.admitted[w]++
		}
	}
	var fill float64
	var whole, most int
	for w, n := range res.admitted {
		most = max(most, n)
		if n > allow(w.idx) {
			t.Errorf("key %d window %d: %d processes admitted %d, over the bound %d", w.key, w.idx, leaseProcs, n, allow(w.idx))
		}
		if w.idx >= first && w.idx <= last {
			fill += float64(n) / float64(r.limit.Rate)
			whole++
		}
	}
	if len(res.admitted) == 0 {
		t.Error("nothing admitted")
	}
	if whole > 0 {
		fill /= float64(whole)
	}
	t.Logf("%v %d keys, limit %v: most admitted in a window %d, mean fill of whole windows %.3f (%d of %d pairs with admissions), %d calls, %d over 1ms, %.5f scripts per decision, %d units lost, %d units admitted across a boundary",
		r.alg, r.keys, r.limit, most, fill, whole, r.keys*(last-first+1), res.calls, res.slow, float64(res.scripts)/float64(max(res.calls, 1)), res.lost, straddled)
	return fill
}

// TestLeaseMultiProcess: 4 processes × 16 goroutines on one hot key and on 1,000 keys,
// for each algorithm the lease strategy decides: no window of any key ever admits more
// than the limit.
func TestLeaseMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	addr := redistest.Addr(t)
	cases := []struct {
		keys  int
		limit ratelimit.Limit
	}{
		{1, ratelimit.Limit{Rate: 20000, Period: time.Second}},
		{1000, ratelimit.Limit{Rate: 100, Period: time.Second}},
	}
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowCounter} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%v/%d", alg, c.keys), func(t *testing.T) {
				r := leaseRun{addr: addr, prefix: testPrefix(t), alg: alg, keys: c.keys, limit: c.limit,
					accuracy: 0.05, dur: 2500 * time.Millisecond}
				res := runLease(t, &r, nil)
				// Only the bound is asserted: how close to it the processes get depends on
				// how fast refills come back on a loaded machine, and is logged.
				res.check(t, &r, func(int) int { return r.limit.Rate })
			})
		}
	}
}

// TestLeaseFaults: the bound holds while Redis is killed and restarted, while it hangs for
// 3s, and when one of the processes is killed, and no decision waits on Redis meanwhile
// (the calls over a millisecond are logged: on a loaded machine the scheduler makes some).
// Redis runs without persistence, so a restart forgets the window's count: the window in
// which it restarts may admit the limit twice, once before the crash and once after.
func TestLeaseFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	limit := ratelimit.Limit{Rate: 20000, Period: time.Second}
	newRun := func(t *testing.T, srv *redistest.Server, dur time.Duration) leaseRun { // runLease sets start
		return leaseRun{addr: srv.Addr(), prefix: testPrefix(t), alg: ratelimit.FixedWindow, keys: 1, limit: limit,
			accuracy: 0.05, dur: dur}
	}
	at := func(r *leaseRun, d time.Duration) { time.Sleep(time.Until(r.start.Add(d))) }
	idx := func(t time.Time) int { return int(t.UnixNano() / int64(limit.Period)) }

	t.Run("kill-redis", func(t *testing.T) {
		srv := redistest.Start(t)
		r := newRun(t, srv, 3500*time.Millisecond)
		var restarted [2]int
		res := runLease(t, &r, func([]*storetest.Child) {
			at(&r, time.Second)
			srv.Kill()
			at(&r, 1500*time.Millisecond)
			restarted[0] = idx(time.Now())
			if err := srv.Restart(); err != nil {
				t.Error(err)
			}
			restarted[1] = idx(time.Now())
		})
		res.check(t, &r, func(w int) int {
			if w == restarted[0] || w == restarted[1] {
				return 2 * limit.Rate
			}
			return limit.Rate
		})
	})
	t.Run("stop-redis", func(t *testing.T) {
		srv := redistest.Start(t)
		r := newRun(t, srv, 5500*time.Millisecond)
		res := runLease(t, &r, func([]*storetest.Child) {
			at(&r, time.Second)
			srv.Pause()
			at(&r, 4*time.Second)
			srv.Resume()
		})
		res.check(t, &r, func(int) int { return limit.Rate })
	})
	t.Run("kill-worker", func(t *testing.T) {
		srv := redistest.Start(t)
		r := newRun(t, srv, 3*time.Second)
		r.snapshots = true
		res := runLease(t, &r, func(children []*storetest.Child) {
			at(&r, 1500*time.Millisecond)
			_ = children[0].Kill()
		})
		res.check(t, &r, func(int) int { return limit.Rate })
	})
}
