package topkeys

import (
	"unsafe"

	"github.com/go-ratelimit/ratelimit"
)

// summary is a Space-Saving summary of at most k keys: their counts, a min-heap of them
// by count, and an open-addressing index from hash to slot. All of its memory is
// allocated by init.
type summary struct {
	n        int       // slots in use
	slots    []slot    // k
	heap     []counter // a min-heap of the slots' counts; heap[0] has the least
	pos      []int32   // k: the position of each slot's counter in heap
	index    []int32   // slot index + 1 per hash position, 0 when empty; a power of two ≥ 2k
	keys     []byte    // k × keyBytes: slot i's key starts at i × keyBytes
	keyBytes int
}

// slot is a tracked key.
type slot struct {
	hash   uint64
	err    uint64 // the count it inherited: at most this many were not counted
	counts Counts // counted while tracked
	klen   uint8
}

// counter is a slot's count in the heap, kept apart from the slot so that the heap's
// moves touch one small array: the Space-Saving estimate, counted + err, an upper bound.
type counter struct {
	count uint64
	slot  int32
}

var (
	sizeofSlot       = unsafe.Sizeof(slot{})
	sizeofCollector  = unsafe.Sizeof(Collector{})
	sizeofBucket     = unsafe.Sizeof(bucket{})
	sizeofCounter    = unsafe.Sizeof(counter{})
	sizeofIndexEntry = unsafe.Sizeof(int32(0))
)

// slabs hold the memory of many summaries, allocated at once so that the memory a
// Collector holds is what it asks for, with no allocator rounding per summary.
type slabs struct {
	slots    []slot
	counters []counter
	ints     []int32
	keys     []byte
}

// newSlabs allocates the memory of n summaries of k keys of keyBytes.
func newSlabs(n, k, keyBytes int) *slabs {
	return &slabs{
		slots:    make([]slot, n*k),
		counters: make([]counter, n*k),
		ints:     make([]int32, n*(k+indexSize(k))),
		keys:     make([]byte, n*k*keyBytes),
	}
}

// bytes is the memory of the slabs.
func (m *slabs) bytes() int {
	return len(m.slots)*int(sizeofSlot) + len(m.counters)*int(sizeofCounter) +
		len(m.ints)*int(sizeofIndexEntry) + len(m.keys)
}

// indexSize is the length of the index of a summary of k keys: a power of two ≥ 2k, so
// that linear probing stays short.
func indexSize(k int) int {
	size := 1
	for size < 2*k {
		size <<= 1
	}
	return size
}

// carve takes n items from *slab.
func carve[T any](slab *[]T, n int) []T {
	s := (*slab)[:n:n]
	*slab = (*slab)[n:]
	return s
}

// init gives s its memory, taken from m.
func (s *summary) init(m *slabs, k, keyBytes int) {
	s.slots = carve(&m.slots, k)
	s.heap = carve(&m.counters, k)[:0]
	s.pos = carve(&m.ints, k)
	s.index = carve(&m.ints, indexSize(k))
	s.keys = carve(&m.keys, k*keyBytes)
	s.keyBytes = keyBytes
}

func (s *summary) reset() {
	if s.n == 0 {
		return
	}
	s.n = 0
	s.heap = s.heap[:0]
	clear(s.index)
}

// key returns the key of slot i. It aliases the summary's memory.
func (s *summary) key(i int) []byte {
	off := i * s.keyBytes
	return s.keys[off : off+int(s.slots[i].klen)]
}

// floor is the least count a key must have to be tracked: the count of a key that is
// not tracked is at most floor. It is 0 while the summary is not full.
func (s *summary) floor() uint64 {
	if s.n < len(s.slots) {
		return 0
	}
	return s.heap[0].count
}

// find returns the slot of the key with hash h, -1 when it is not tracked. With byHash,
// the hash alone identifies the key.
func (s *summary) find(key string, h uint64, byHash bool) int {
	mask := uint64(len(s.index) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		i := s.index[p] - 1
		if i < 0 {
			return -1
		}
		if sl := &s.slots[i]; sl.hash == h && (byHash || string(s.key(int(i))) == key) {
			return int(i)
		}
	}
}

// add counts one decision of outcome o for key.
func (s *summary) add(key string, h uint64, o ratelimit.Outcome, byHash bool) {
	i := s.find(key, h, byHash)
	if i < 0 {
		i = s.insert(key, h, byHash)
	}
	sl := &s.slots[i]
	p := int(s.pos[i])
	s.heap[p].count++
	switch o {
	case ratelimit.Allowed:
		sl.counts.Allowed++
	case ratelimit.Denied:
		sl.counts.Denied++
	default:
		sl.counts.Failed++
	}
	if p = s.up(p); p == int(s.pos[i]) { // a new key's slot is a leaf
		s.down(p)
	}
}

// insert tracks key in a free slot or, when the summary is full, in the slot of the
// least count, which the key inherits as its error. It returns the slot.
func (s *summary) insert(key string, h uint64, byHash bool) int {
	var i int
	var inherited uint64
	if s.n < len(s.slots) {
		i = s.n
		s.n++
		s.pos[i] = int32(len(s.heap))
		s.heap = append(s.heap, counter{slot: int32(i)})
	} else {
		i = int(s.heap[0].slot)
		inherited = s.heap[0].count
		s.unindex(i)
	}
	sl := &s.slots[i]
	sl.hash, sl.err, sl.counts = h, inherited, Counts{}
	off := i * s.keyBytes
	if byHash {
		putHash(s.keys[off:off+hashLen], h)
		sl.klen = hashLen
	} else {
		sl.klen = uint8(copy(s.keys[off:off+s.keyBytes], key))
	}
	mask := uint64(len(s.index) - 1)
	p := h & mask
	for s.index[p] != 0 {
		p = (p + 1) & mask
	}
	s.index[p] = int32(i) + 1
	return i
}

// unindex removes slot i from the index, shifting back the entries after it so that
// every lookup still finds its entry without tombstones.
func (s *summary) unindex(i int) {
	mask := uint64(len(s.index) - 1)
	p := s.slots[i].hash & mask
	for s.index[p] != int32(i)+1 {
		p = (p + 1) & mask
	}
	for q := (p + 1) & mask; s.index[q] != 0; q = (q + 1) & mask {
		home := s.slots[s.index[q]-1].hash & mask
		// The entry at q may move to the hole at p unless its home lies cyclically in
		// (p, q].
		if (q-home)&mask >= (q-p)&mask {
			s.index[p] = s.index[q]
			p = q
		}
	}
	s.index[p] = 0
}

// up restores the heap after the count at position p became less than its parent's,
// and returns the counter's new position.
func (s *summary) up(p int) int {
	h := s.heap
	for p > 0 {
		q := (p - 1) / 2
		if h[q].count <= h[p].count {
			break
		}
		h[p], h[q] = h[q], h[p]
		s.pos[h[p].slot] = int32(p)
		s.pos[h[q].slot] = int32(q)
		p = q
	}
	return p
}

// down restores the heap after the count at position p grew.
func (s *summary) down(p int) {
	h := s.heap
	n := len(h)
	for {
		c := 2*p + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].count < h[c].count {
			c = r
		}
		if h[p].count <= h[c].count {
			break
		}
		h[p], h[c] = h[c], h[p]
		s.pos[h[p].slot] = int32(p)
		s.pos[h[c].slot] = int32(c)
		p = c
	}
}
