package topkeys

import (
	"unsafe"

	"github.com/go-ratelimit/ratelimit"
)

// summary is a Space-Saving summary of at most k keys in the stream-summary layout of
// Metwally et al.: the tracked keys' slots hang in groups of equal estimated count, and the
// groups form a list in increasing count, so that counting a decision and finding the key
// of least count both take constant time. An open-addressing index maps a hash to its slot.
// All of its memory is allocated by init.
type summary struct {
	n          int     // slots in use
	slots      []slot  // k
	slotLinks  []links // k: the other slots of each slot's group
	groups     []group // k: at most one per slot in use
	groupLinks []links // k: the groups of the next smaller and next larger counts
	used       int32   // groups[:used] have been handed out
	free       int32   // a group no longer in use, chained by groupLinks' next; none when < 0
	min        int32   // the group of the least count; none when < 0
	index      []int32 // slot index + 1 per hash position, 0 when empty; a power of two ≥ 2k
	keys       []byte  // k × keyBytes: slot i's key starts at i × keyBytes
	keyBytes   int
}

// slot is a tracked key.
type slot struct {
	hash   uint64
	err    uint64 // the count it inherited: at most this many were not counted
	counts Counts // counted while tracked
	group  int32  // the group of its estimate
	klen   uint8
}

// group holds the slots whose Space-Saving estimate (counted + err, an upper bound of the
// truth) is count.
type group struct {
	count uint64
	first int32 // the first of its slots, the others chained by slotLinks
}

// links are an item's neighbours in a doubly linked list; none when < 0.
type links struct{ prev, next int32 }

var (
	sizeofSlot       = unsafe.Sizeof(slot{})
	sizeofCollector  = unsafe.Sizeof(Collector{})
	sizeofBucket     = unsafe.Sizeof(bucket{})
	sizeofGroup      = unsafe.Sizeof(group{})
	sizeofLinks      = unsafe.Sizeof(links{})
	sizeofIndexEntry = unsafe.Sizeof(int32(0))
)

// slabs hold the memory of many summaries, allocated at once so that the memory a
// Collector holds is what it asks for, with no allocator rounding per summary.
type slabs struct {
	slots  []slot
	groups []group
	links  []links
	ints   []int32
	keys   []byte
}

// newSlabs allocates the memory of n summaries of k keys of keyBytes.
func newSlabs(n, k, keyBytes int) *slabs {
	return &slabs{
		slots:  make([]slot, n*k),
		groups: make([]group, n*k),
		links:  make([]links, 2*n*k),
		ints:   make([]int32, n*indexSize(k)),
		keys:   make([]byte, n*k*keyBytes),
	}
}

// bytes is the memory of the slabs.
func (m *slabs) bytes() int {
	return len(m.slots)*int(sizeofSlot) + len(m.groups)*int(sizeofGroup) +
		len(m.links)*int(sizeofLinks) + len(m.ints)*int(sizeofIndexEntry) + len(m.keys)
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
	s.slotLinks = carve(&m.links, k)
	s.groups = carve(&m.groups, k)
	s.groupLinks = carve(&m.links, k)
	s.index = carve(&m.ints, indexSize(k))
	s.keys = carve(&m.keys, k*keyBytes)
	s.keyBytes = keyBytes
	s.used, s.free, s.min = 0, -1, -1
}

func (s *summary) reset() {
	if s.n == 0 {
		return
	}
	s.n = 0
	s.used, s.free, s.min = 0, -1, -1
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
	return s.groups[s.min].count
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
	if i >= 0 {
		s.bump(int32(i))
	} else {
		i = s.insert(key, h, byHash)
	}
	sl := &s.slots[i]
	switch o {
	case ratelimit.Allowed:
		sl.counts.Allowed++
	case ratelimit.Denied:
		sl.counts.Denied++
	default:
		sl.counts.Failed++
	}
}

// insert tracks key, counted once, in a free slot or, when the summary is full, in a slot
// of the least count, which the key inherits as its error. It returns the slot.
func (s *summary) insert(key string, h uint64, byHash bool) int {
	var i int32
	if s.n < len(s.slots) {
		i = int32(s.n)
		s.n++
		s.slots[i] = slot{}
		if s.min >= 0 && s.groups[s.min].count == 1 {
			s.attach(i, s.min)
		} else {
			s.attach(i, s.newGroup(1, -1, s.min))
		}
	} else {
		i = s.groups[s.min].first
		s.unindex(int(i))
		sl := &s.slots[i]
		sl.err, sl.counts = s.groups[s.min].count, Counts{}
		s.bump(i)
	}
	sl := &s.slots[i]
	sl.hash = h
	off := int(i) * s.keyBytes
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
	s.index[p] = i + 1
	return int(i)
}

// bump adds one to the estimate of slot i: it moves to the group of the next count.
func (s *summary) bump(i int32) {
	g := s.slots[i].group
	gr := &s.groups[g]
	c, next := gr.count+1, s.groupLinks[g].next
	switch {
	case next >= 0 && s.groups[next].count == c:
		s.detach(i)
		s.attach(i, next)
	case gr.first == i && s.slotLinks[i].next < 0: // alone in its group: the group moves up
		gr.count = c
	default:
		s.detach(i)
		s.attach(i, s.newGroup(c, g, next))
	}
}

// newGroup links a group of count between the groups prev and next and returns it.
func (s *summary) newGroup(count uint64, prev, next int32) int32 {
	g := s.free
	if g >= 0 {
		s.free = s.groupLinks[g].next
	} else {
		g = s.used
		s.used++
	}
	s.groups[g] = group{count: count, first: -1}
	s.groupLinks[g] = links{prev: prev, next: next}
	if prev >= 0 {
		s.groupLinks[prev].next = g
	} else {
		s.min = g
	}
	if next >= 0 {
		s.groupLinks[next].prev = g
	}
	return g
}

// attach puts slot i first in group g.
func (s *summary) attach(i, g int32) {
	gr := &s.groups[g]
	s.slots[i].group = g
	s.slotLinks[i] = links{prev: -1, next: gr.first}
	if gr.first >= 0 {
		s.slotLinks[gr.first].prev = i
	}
	gr.first = i
}

// detach takes slot i out of its group, and the group out of the list once empty, onto
// the free ones.
func (s *summary) detach(i int32) {
	g := s.slots[i].group
	gr := &s.groups[g]
	unlink(s.slotLinks, i, &gr.first)
	if gr.first >= 0 {
		return
	}
	unlink(s.groupLinks, g, &s.min)
	s.groupLinks[g].next, s.free = s.free, g
}

// unlink takes item x out of the doubly linked list in ls whose first item is *first.
func unlink(ls []links, x int32, first *int32) {
	l := ls[x]
	if l.prev >= 0 {
		ls[l.prev].next = l.next
	} else {
		*first = l.next
	}
	if l.next >= 0 {
		ls[l.next].prev = l.prev
	}
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
