package memorystore

import (
	"math/bits"
	"unsafe"

	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// id identifies a (key, algorithm) pair by a 96-bit keyed hash. Its b always has the low
// bit set, so a slot with b == 0 is empty.
type id struct {
	a uint64
	b uint32
}

// slot is one entry of a table: 40 bytes. The id's fields are inlined, since an id field
// would be padded to 16 bytes.
type slot struct {
	a       uint64
	b       uint32
	expires uint32 // ticks (see tickShift) since the store's base instant when the state is as good as new
	state   algo.State
}

func (s *slot) id() id       { return id{s.a, s.b} }
func (s *slot) empty() bool  { return s.b == 0 }
func (s *slot) is(k id) bool { return s.a == k.a && s.b == k.b }

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
		if s.is(k) {
			return i, true
		}
		if s.empty() {
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
		if !old[i].empty() {
			j, _ := t.find(old[i].id())
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
		if t.slots[j].empty() {
			break
		}
		// The entry at j may move to i if i lies cyclically within [home, j).
		h := t.home(t.slots[j].id())
		if (j-h+n)%n >= (j-i+n)%n {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = slot{}
}

// The size of a slot decides the memory per key; keep it at 40 bytes.
var _ [40 - unsafe.Sizeof(slot{})]struct{}
var _ [unsafe.Sizeof(slot{}) - 40]struct{}
