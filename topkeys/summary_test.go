package topkeys

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/go-ratelimit/ratelimit"
)

// TestSummaryInvariants feeds a small summary random keys and checks the stream-summary
// after each step: the groups in strictly increasing count from min, every slot in the
// group of its estimate (counted + inherited), every slot indexed, and the floor the least
// estimate.
func TestSummaryInvariants(t *testing.T) {
	const k = 16
	var s summary
	s.init(newSlabs(1, k, 8), k, 8)
	rng := rand.New(rand.NewPCG(5, 6))
	for step := range 20000 {
		if step == 10000 {
			s.reset()
		}
		key := "k" + strconv.Itoa(int(rng.ExpFloat64()*20))
		// A weak hash, so that keys collide and find compares them.
		s.add(key, uint64(len(key))*0x9e3779b97f4a7c15^uint64(key[len(key)-1]), ratelimit.Outcome(1+rng.IntN(3)), false)
		checkSummary(t, &s)
		if t.Failed() {
			t.Fatalf("after step %d", step)
		}
	}
}

func checkSummary(t *testing.T, s *summary) {
	t.Helper()
	seen := 0
	var last uint64
	prev := int32(-1)
	for g := s.min; g >= 0; g = s.groupLinks[g].next {
		gr := &s.groups[g]
		if gr.count <= last || s.groupLinks[g].prev != prev || gr.first < 0 {
			t.Errorf("group %d: count %d after %d, prev %d want %d, first %d", g, gr.count, last, s.groupLinks[g].prev, prev, gr.first)
			return
		}
		slotPrev := int32(-1)
		for i := gr.first; i >= 0; i = s.slotLinks[i].next {
			if s.slotLinks[i].prev != slotPrev {
				t.Errorf("slot %d: prev %d, want %d", i, s.slotLinks[i].prev, slotPrev)
			}
			slotPrev = i
			sl := &s.slots[i]
			if sl.group != g || sl.err+sl.counts.Total() != gr.count {
				t.Errorf("slot %d in group %d (count %d): group %d, estimate %d", i, g, gr.count, sl.group, sl.err+sl.counts.Total())
			}
			if s.find(string(s.key(int(i))), sl.hash, false) != int(i) {
				t.Errorf("slot %d is not found by its key", i)
			}
			seen++
		}
		last, prev = gr.count, g
	}
	if seen != s.n {
		t.Errorf("%d slots in the groups, %d in use", seen, s.n)
	}
	if k := len(s.slots); s.n == k && s.floor() != s.groups[s.min].count || s.n < k && s.floor() != 0 {
		t.Errorf("floor %d with %d slots in use", s.floor(), s.n)
	}
}
