package memorystore

import (
	"math/bits"

	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// id identifies a (key, algorithm) pair by a 96-bit keyed hash. The zero id marks an empty
// slot; ids always have the low bit of b set.
type id struct {
	a uint64
	b uint32
}

// slot is one entry of a table: 40 bytes.
type slot struct {
	id      id
	expires uint32 // ticks (see tickShift) since the store's base instant when the state is as good as new
	state   algo.State
}

// table is an open-addressing hash table with linear probing and backward-shift deletion.
// Its capacity is any size (slots are addressed by multiply-shift, not masking), which lets
// it grow by a quarter at a time and keep memory per key low.
type table struct {
	slots []slot
	count int
}

const (
	minSlots  = 8
	maxLoadNu = 4 // grow when count exceeds 4/5 of the slots
	maxLoadDe = 5
)

func (t *table) home(k id) int {
	hi, _ := bits.Mul64(k.a, uint64(len(t.slots)))
	return int(hi)
}

// find returns the index of k's slot and true, or the index of the empty slot where k
// belongs and false. The table must have at least one empty slot.
func (t *table) find(k id) (int, bool) {
	n := len(t.slots)
	if n == 0 {
		return -1, false
	}
	i := t.home(k)
	for {
		s := &t.slots[i]
		if s.id == k {
			return i, true
		}
		if s.id == (id{}) {
			return i, false
		}
		if i++; i == n {
			i = 0
		}
	}
}

// full reports whether one more key would exceed the maximum load.
func (t *table) full() bool {
	return (t.count+1)*maxLoadDe > len(t.slots)*maxLoadNu
}

// resize moves every entry into a table of n slots; n must exceed count.
func (t *table) resize(n int) {
	old := t.slots
	t.slots = make([]slot, n)
	for i := range old {
		if old[i].id != (id{}) {
			j, _ := t.find(old[i].id)
			t.slots[j] = old[i]
		}
	}
}

// grow makes room for one more key.
func (t *table) grow() {
	t.resize(max(minSlots, len(t.slots)+len(t.slots)/4+1))
}

// remove empties slot i and shifts later entries of its probe run back, so that no
// tombstones are needed.
func (t *table) remove(i int) {
	n := len(t.slots)
	t.count--
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		if t.slots[j].id == (id{}) {
			break
		}
		// The entry at j may move to i if i lies cyclically within [home, j).
		h := t.home(t.slots[j].id)
		if (j-h+n)%n >= (j-i+n)%n {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot{}
}
