package topkeys_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/topkeys"
)

func ev(key string, o ratelimit.Outcome) ratelimit.Event {
	return ratelimit.Event{Rule: "r", Key: key, Outcome: o}
}

func observe(c *topkeys.Collector, key string, o ratelimit.Outcome, times int) {
	for range times {
		c.Observe(ev(key, o))
	}
}

func TestExactForFewKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := topkeys.New(nil)
		observe(c, "alice", ratelimit.Allowed, 10)
		observe(c, "alice", ratelimit.Denied, 5)
		observe(c, "bob", ratelimit.Allowed, 3)
		observe(c, "bob", ratelimit.Denied, 7)
		observe(c, "carol", ratelimit.Allowed, 20)
		observe(c, "dave", ratelimit.Failed, 2)
		c.Observe(ratelimit.Event{Key: "ignored"}) // no outcome

		want := map[string]topkeys.Counts{
			"alice": {Allowed: 10, Denied: 5},
			"bob":   {Allowed: 3, Denied: 7},
			"carol": {Allowed: 20},
			"dave":  {Failed: 2},
			"eve":   {},
		}
		for k, w := range want {
			got := c.Stats(k)
			if got.Counts != w || got.Missed != 0 || got.DeniedMissed != 0 || got.Key != k {
				t.Errorf("Stats(%q) = %+v, want %+v exact", k, got, w)
			}
		}
		if g, w := c.Global(), (topkeys.Counts{Allowed: 33, Denied: 12, Failed: 2}); g != w {
			t.Errorf("Global() = %+v, want %+v", g, w)
		}
		if r := c.Stats("bob").DenyRatio(); r != 0.7 {
			t.Errorf("bob's DenyRatio() = %v, want 0.7", r)
		}
		if got := keys(c.Top(10)); got != "bob alice" {
			t.Errorf("Top(10) = %s, want bob alice", got)
		}
		if got := keys(c.Top(1)); got != "bob" {
			t.Errorf("Top(1) = %s, want bob", got)
		}
		if got := keys(c.TopTraffic(3)); got != "carol alice bob" {
			t.Errorf("TopTraffic(3) = %s, want carol alice bob", got)
		}
		if got := c.Top(0); got != nil {
			t.Errorf("Top(0) = %v, want nil", got)
		}
	})
}

func keys(ks []topkeys.KeyStats) string {
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += k.Key
	}
	return s
}

func TestSlidingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := topkeys.New(&topkeys.Options{Window: time.Minute, Buckets: 6})
		// Start on a step boundary, so the steps are known. The collector's timer turns
		// the step at each boundary: sleep waits for it (synctest.Wait) before going on.
		sleep(time.Until(time.Now().Truncate(10 * time.Second).Add(10 * time.Second)))
		observe(c, "a", ratelimit.Denied, 4)
		sleep(30 * time.Second)
		observe(c, "a", ratelimit.Denied, 2)
		observe(c, "b", ratelimit.Allowed, 1)
		steps := []struct {
			after  time.Duration
			denied uint64
			global uint64
		}{
			{0, 6, 7},
			{29 * time.Second, 6, 7}, // 59 s after the first denials: still in the window
			{1 * time.Second, 2, 3},  // the first step left
			{30 * time.Second, 0, 0}, // all gone
			{time.Hour, 0, 0},        // long idle
		}
		for i, st := range steps {
			sleep(st.after)
			if got := c.Stats("a").Denied; got != st.denied {
				t.Errorf("step %d: Stats(a).Denied = %d, want %d", i, got, st.denied)
			}
			if got := c.Global().Total(); got != st.global {
				t.Errorf("step %d: Global().Total() = %d, want %d", i, got, st.global)
			}
		}
		observe(c, "c", ratelimit.Denied, 1)
		if got := keys(c.Top(5)); got != "c" {
			t.Errorf("after the idle hour, Top(5) = %s, want c", got)
		}
	})
}

// sleep sleeps for d in a synctest bubble, then lets the collectors' timers of the
// boundaries reached run.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func TestKeyBytesAndHashKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := topkeys.New(&topkeys.Options{KeyBytes: 4})
		observe(c, "user-1", ratelimit.Denied, 1)
		observe(c, "user-2", ratelimit.Denied, 2)
		if st := c.Stats("user-9"); st.Key != "user" || st.Denied != 3 {
			t.Errorf("with KeyBytes 4, Stats(user-9) = %+v, want key user with 3 denials", st)
		}

		h := topkeys.New(&topkeys.Options{HashKeys: true})
		observe(h, "10.1.2.3", ratelimit.Denied, 3)
		observe(h, "10.1.2.4", ratelimit.Denied, 1)
		top := h.Top(5)
		if len(top) != 2 || top[0].Denied != 3 || top[1].Denied != 1 {
			t.Fatalf("hashed Top(5) = %+v, want two keys with 3 and 1 denials", top)
		}
		for _, k := range top {
			if len(k.Key) != 16 || k.Key == "10.1.2.3" || k.Key == "10.1.2.4" {
				t.Errorf("hashed key reported as %q, want 16 hex digits", k.Key)
			}
			if _, err := strconv.ParseUint(k.Key, 16, 64); err != nil {
				t.Errorf("hashed key %q is not hexadecimal: %v", k.Key, err)
			}
		}
		if st := h.Stats("10.1.2.3"); st.Key != top[0].Key || st.Denied != 3 {
			t.Errorf("Stats(10.1.2.3) = %+v, want key %s with 3 denials", st, top[0].Key)
		}
	})
}

func TestOptionsClamped(t *testing.T) {
	c := topkeys.New(&topkeys.Options{Window: -1, Buckets: 1000, Keys: -5, KeyBytes: 1 << 20})
	if c.Window() < 60*time.Millisecond {
		t.Errorf("Window() = %v, want at least 1ms per bucket", c.Window())
	}
	c.Observe(ev("k", ratelimit.Denied))
	if st := c.Stats("k"); st.Denied != 1 {
		t.Errorf("clamped collector: Stats(k) = %+v, want 1 denial", st)
	}
}

func TestDefaultSize(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := topkeys.New(nil)
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int(after.HeapAlloc) - int(before.HeapAlloc)
	t.Logf("default collector: Bytes() = %d (%.2f MiB), heap grew by %d", c.Bytes(), float64(c.Bytes())/(1<<20), held)
	if c.Bytes() > 2<<20 {
		t.Errorf("Bytes() = %d, want at most 2 MiB", c.Bytes())
	}
	if held > c.Bytes()+64<<10 {
		t.Errorf("the heap grew by %d bytes, more than Bytes() = %d", held, c.Bytes())
	}
	runtime.KeepAlive(c)
}

// TestZipfFlood floods a default collector with a million distinct keys, each seen once,
// mixed with Zipf-distributed traffic, and checks that Top and TopTraffic report the true
// top 10 with counts within their stated bounds, in the memory New allocated.
func TestZipfFlood(t *testing.T) {
	const distinct = 1_000_000
	const heavy = 1_000_000
	const limit = 100 // a key's decisions past the first 100 are denied
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, distinct-1)
	names := make([]string, distinct)
	for i := range names {
		names[i] = "client-" + strconv.Itoa(i)
	}
	seq := make([]int32, 0, distinct+heavy)
	for i := range distinct {
		seq = append(seq, int32(i), int32(zipf.Uint64())) // each key at least once
	}
	seen := make([]uint32, distinct)
	total := map[string]uint64{}
	denied := map[string]uint64{}
	for _, k := range seq {
		seen[k]++
		if seen[k] > limit/2 { // only heavy keys: the truth of the rest does not matter
			total[names[k]] = uint64(seen[k])
			denied[names[k]] = uint64(max(int(seen[k])-limit, 0))
		}
	}

	synctest.Test(t, func(t *testing.T) {
		c := topkeys.New(nil)
		clear(seen)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		start := ms.HeapAlloc
		for _, k := range seq {
			seen[k]++
			o := ratelimit.Allowed
			if seen[k] > limit {
				o = ratelimit.Denied
			}
			c.Observe(ev(names[k], o))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if grew := int64(ms.HeapAlloc) - int64(start); grew > 64<<10 {
			t.Errorf("the heap grew by %d bytes during the flood, want nothing past the collector's %d", grew, c.Bytes())
		}

		check := func(name string, got []topkeys.KeyStats, truth map[string]uint64, count, slack func(topkeys.KeyStats) uint64) {
			want := trueTop(truth, 10)
			gotKeys := make([]string, len(got))
			for i, g := range got {
				gotKeys[i] = g.Key
				if lo, tr := count(g), truth[g.Key]; lo > tr || tr > lo+slack(g) {
					t.Errorf("%s: %s counted %d, missed at most %d, true %d: outside the bound", name, g.Key, lo, slack(g), tr)
				}
			}
			sort.Strings(gotKeys)
			if fmt.Sprint(gotKeys) != fmt.Sprint(want) {
				t.Errorf("%s(10) keys %v, want the true top 10 %v", name, gotKeys, want)
			}
		}
		check("Top", c.Top(10), denied,
			func(k topkeys.KeyStats) uint64 { return k.Denied }, func(k topkeys.KeyStats) uint64 { return k.DeniedMissed })
		check("TopTraffic", c.TopTraffic(10), total,
			func(k topkeys.KeyStats) uint64 { return k.Total() }, func(k topkeys.KeyStats) uint64 { return k.Missed })
		if g := c.Global(); g.Total() != distinct+heavy {
			t.Errorf("Global().Total() = %d, want %d", g.Total(), distinct+heavy)
		}
	})
}

// trueTop returns the n keys of the greatest counts, sorted by key, with ties at the
// cut-off failing the comparison loudly rather than silently.
func trueTop(counts map[string]uint64, n int) []string {
	ks := make([]string, 0, len(counts))
	for k, v := range counts {
		if v > 0 {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool {
		if counts[ks[i]] != counts[ks[j]] {
			return counts[ks[i]] > counts[ks[j]]
		}
		return ks[i] < ks[j]
	})
	ks = ks[:min(n, len(ks))]
	sort.Strings(ks)
	return ks
}

func TestConcurrent(t *testing.T) {
	c := topkeys.New(&topkeys.Options{Window: time.Hour})
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				o := ratelimit.Allowed
				if i%4 == 0 {
					o = ratelimit.Denied
				}
				c.Observe(ev("k"+strconv.Itoa(i%16), o))
				if w == 0 && i%100 == 0 {
					c.Top(5)
					c.TopTraffic(5)
					c.Stats("k1")
					c.Global()
				}
			}
		})
	}
	wg.Wait()
	// Unless an hour step turned meanwhile, every count is exact.
	g := c.Global()
	if g.Total() != workers*per && g.Total() != 0 {
		t.Fatalf("Global().Total() = %d, want %d", g.Total(), workers*per)
	}
	if g.Total() == 0 {
		t.Skip("the window's step turned during the test")
	}
	var sum uint64
	for i := range 16 {
		st := c.Stats("k" + strconv.Itoa(i))
		sum += st.Total()
		if st.Missed != 0 || st.Total() != workers*per/16 {
			t.Errorf("Stats(k%d) = %+v, want %d exact", i, st, workers*per/16)
		}
	}
	if sum != g.Total() {
		t.Errorf("keys sum to %d, Global() to %d", sum, g.Total())
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	c := topkeys.New(nil)
	keys := make([]string, 5000) // more than the collector tracks: eviction is exercised
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	i := 0
	allocs := testing.AllocsPerRun(20000, func() {
		c.Observe(ev(keys[i%len(keys)], ratelimit.Outcome(1+i%3)))
		i++
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %v times per call, want 0", allocs)
	}
}

// TestClockRunsAndLetsGo checks, on the real clock, that the timer turns the steps (the
// counts leave the window) and that it does not keep a dropped Collector alive.
func TestClockRunsAndLetsGo(t *testing.T) {
	c := topkeys.New(&topkeys.Options{Window: 60 * time.Millisecond, Buckets: 6})
	observe(c, "a", ratelimit.Denied, 3)
	if got := c.Global().Denied; got != 3 {
		t.Fatalf("Global().Denied = %d, want 3", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Global().Denied != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the denials of a 60ms window were still counted 10s later")
		}
		time.Sleep(10 * time.Millisecond)
	}

	gone := make(chan struct{})
	runtime.AddCleanup(c, func(ch chan struct{}) { close(ch) }, gone)
	c = nil
	for {
		runtime.GC()
		select {
		case <-gone:
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("a dropped Collector was not collected: its timer holds it")
		}
	}
}
