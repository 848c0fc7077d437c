// Package topkeys answers "who is being limited right now": it is a [ratelimit.Observer]
// that ranks the keys of recent decisions by denials and by traffic, and counts allowed,
// denied and failed decisions per key and overall, over a sliding window, in memory fixed
// when it is made whatever the number of distinct keys.
//
//	top := topkeys.New(nil) // the last minute, 1024 keys per ranking, 1.80 MiB
//	lim := ratelimit.NewWithOptions(store, ratelimit.GCRA, ratelimit.PerSecond(10),
//		&ratelimit.Options{Name: "api", Observer: top})
//	...
//	for _, k := range top.Top(10) {
//		fmt.Println(k.Key, k.Denied, k.Total())
//	}
//
// # How it counts
//
// The window is cut into [Options.Buckets] steps aligned to the Unix epoch; a reading
// covers the current, partly elapsed step and the ones before it, between
// Window·(Buckets−1)/Buckets and Window. The step turns on a timer at each boundary, not
// by a clock read per decision: a decision made between a boundary and the timer's run
// (usually well under a millisecond, longer on a starved machine) counts in the step
// before. Keys are spread by a keyed hash over a fixed
// number of shards, each with its own lock, and each shard keeps, per step, two
// Space-Saving summaries (Metwally, Agrawal and El Abbadi, 2005) of k counters each: one
// over every decision, one over denials. A summary that meets a new key when full gives
// the counter with the least count to it, and remembers that count as the new key's
// possible error. The counters are kept in groups of equal count, in a list by count (the
// paper's stream-summary), so that counting and finding the least count take constant
// time. So, per step, a summary tracks every key with more than N/k of the
// step's N decisions (of its shard), and a tracked key's count is at most that minimum
// short of the truth. With the keys spread evenly over the shards, a key's undercount
// over the whole window is at most about W/[Options.Keys], W being the decisions in the
// window (the denials in the window for the denial ranking).
//
// Counts are never overstated: [KeyStats] holds what was counted while the key was
// tracked, and Missed says how many of its decisions may have gone uncounted. With fewer
// distinct keys per shard and step than k, every count is exact and Missed is 0.
//
// # Cost
//
// Observe takes one shard lock, hashes the key once (hash/maphash), reads the step from
// an atomic and moves the key's counter to the next group of one or two summaries, in
// constant time; it allocates nothing, and copies a key only when it starts being
// tracked. [Collector.Top], [Collector.TopTraffic] and [Collector.Stats] lock one shard at
// a time and allocate their answer. A Collector holds a timer, which lets go of it when
// the Collector is no longer referenced.
package topkeys

import (
	"encoding/hex"
	"hash/maphash"
	"sort"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// shards is the number of independently locked parts of a Collector.
const shards = 8 // the top 3 bits of a key's hash pick its shard

// Defaults of [Options].
const (
	DefaultWindow   = time.Minute
	DefaultBuckets  = 6
	DefaultKeys     = 1024
	DefaultKeyBytes = 64
)

// MaxKeyBytes is the largest [Options.KeyBytes].
const MaxKeyBytes = 255

// hashLen is the length of a key reported by a Collector with [Options.HashKeys]: the
// 64-bit hash in hexadecimal.
const hashLen = 16

// Options configures a [Collector]. The zero value, or nil, gives the defaults.
type Options struct {
	// Window is how far back the counts go. Default [DefaultWindow], one minute; at
	// least one millisecond per bucket.
	Window time.Duration

	// Buckets is the number of steps the window moves by: the window covers between
	// Window·(Buckets−1)/Buckets and Window of the past. Default [DefaultBuckets], 6;
	// at most 60.
	Buckets int

	// Keys is the number of keys each ranking tracks per step, over all shards. The
	// undercount of a key is at most about the window's decisions divided by Keys.
	// Default [DefaultKeys], 1024; rounded up to a multiple of 8 (the shards), at most
	// 1<<20.
	Keys int

	// KeyBytes is the longest key kept, in bytes: longer keys are cut to their first
	// KeyBytes bytes, and keys that share them count as one. Default
	// [DefaultKeyBytes], 64; at most [MaxKeyBytes].
	KeyBytes int

	// HashKeys, when set, keeps no key: each is known by a 64-bit hash, keyed with a
	// random seed drawn by [New], and reported as 16 hexadecimal digits. [Collector.Stats]
	// still takes the key itself. The seed stays in the process, so the reported values
	// cannot be matched to keys outside it; inside it, anyone who can call Stats can test
	// a guess. Default false: keys are reported as observed (cut to KeyBytes).
	HashKeys bool
}

// Counts are decisions counted over the window.
type Counts struct {
	Allowed uint64 `json:"allowed"`
	Denied  uint64 `json:"denied"`
	Failed  uint64 `json:"failed"` // the store or the arguments failed
}

// Total is Allowed + Denied + Failed.
func (c Counts) Total() uint64 { return c.Allowed + c.Denied + c.Failed }

// DenyRatio is Denied / Total, 0 when Total is 0.
func (c Counts) DenyRatio() float64 {
	if t := c.Total(); t > 0 {
		return float64(c.Denied) / float64(t)
	}
	return 0
}

// KeyStats are the counts of one key over the window.
type KeyStats struct {
	// Key is the key as observed, cut to [Options.KeyBytes], or its hash with
	// [Options.HashKeys].
	Key string `json:"key"`

	// Counts holds the decisions counted while the key was tracked: each is at most the
	// true number, and exact when Missed (for Denied, DeniedMissed) is 0.
	Counts

	// Missed bounds the key's decisions that went uncounted: the true total is between
	// Total() and Total()+Missed.
	Missed uint64 `json:"missed"`

	// DeniedMissed bounds the key's denials that went uncounted: the true number is
	// between Denied and Denied+DeniedMissed.
	DeniedMissed uint64 `json:"denied_missed"`
}

// Collector is a [ratelimit.Observer] that ranks keys. It is safe for concurrent use. Its
// memory is allocated by [New] and does not grow; [Collector.Bytes] says how much.
type Collector struct {
	window   time.Duration
	nbuckets int
	keyBytes int
	hashKeys bool
	seed     maphash.Seed
	bytes    int
	clock    clock
	shards   [shards]shard
}

var _ ratelimit.Observer = (*Collector)(nil)

// shard is an independently locked part of a Collector: the keys whose hash it owns.
type shard struct {
	mu      sync.Mutex
	epoch   int64   // the step number of the newest bucket
	current *bucket // the newest bucket, buckets[epoch % len(buckets)]
	buckets []bucket
	_       [64]byte // keeps shards' locks on different cache lines
}

// bucket holds one step of a shard.
type bucket struct {
	epoch   int64 // the step number it counts; it is current while epoch > now − nbuckets
	all     Counts
	traffic summary // every decision
	denials summary // denials only
}

// New returns a Collector configured by opts, nil for the defaults. Options out of
// range are brought to the nearest value in range (a negative Keys to 8, a KeyBytes of
// 1000 to [MaxKeyBytes], a Window shorter than 1ms per bucket to that).
func New(opts *Options) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Buckets == 0 {
		o.Buckets = DefaultBuckets
	}
	if o.Keys == 0 {
		o.Keys = DefaultKeys
	}
	if o.KeyBytes == 0 {
		o.KeyBytes = DefaultKeyBytes
	}
	o.Buckets = min(max(o.Buckets, 1), 60)
	o.Window = max(o.Window, time.Duration(o.Buckets)*time.Millisecond)
	o.Keys = min(max(o.Keys, shards), 1<<20)
	o.KeyBytes = min(max(o.KeyBytes, 1), MaxKeyBytes)
	perShard := (o.Keys + shards - 1) / shards
	kb := o.KeyBytes
	if o.HashKeys {
		kb = hashLen
	}
	c := &Collector{
		window:   o.Window,
		nbuckets: o.Buckets,
		keyBytes: o.KeyBytes,
		hashKeys: o.HashKeys,
		seed:     maphash.MakeSeed(),
	}
	c.clock.step = int64(o.Window) / int64(o.Buckets)
	c.clock.base = time.Now()
	c.clock.baseUnix = c.clock.base.UnixNano()
	m := newSlabs(2*shards*o.Buckets, perShard, kb)
	c.bytes = m.bytes() + int(sizeofCollector) + shards*o.Buckets*int(sizeofBucket)
	buckets := make([]bucket, shards*o.Buckets)
	for i := range c.shards {
		s := &c.shards[i]
		s.epoch = -1 << 62
		s.buckets = carve(&buckets, o.Buckets)
		s.current = &s.buckets[0] // replaced at the first Observe: epoch is in the past
		for j := range s.buckets {
			b := &s.buckets[j]
			b.epoch = s.epoch
			b.traffic.init(m, perShard, kb)
			b.denials.init(m, perShard, kb)
		}
	}
	c.startClock()
	return c
}

// Bytes is the memory the Collector holds, in bytes: allocated by [New], it does not
// change. With the default options it is 1.80 MiB (1,887,200 bytes on 64-bit platforms).
func (c *Collector) Bytes() int { return c.bytes }

// Window is the length of the window the counts cover.
func (c *Collector) Window() time.Duration { return c.window }

// Observe counts one decision of e.Key. Events of no known outcome are ignored. It
// allocates nothing, and keeps a copy of what it keeps of the key, never e.Key itself:
// the caller may reuse the key's memory once Observe returns.
func (c *Collector) Observe(e ratelimit.Event) {
	if e.Outcome < ratelimit.Allowed || e.Outcome > ratelimit.Failed {
		return
	}
	key, h := c.identify(e.Key)
	now := c.clock.now()
	s := &c.shards[h>>61]
	s.mu.Lock()
	b := s.advance(now)
	switch e.Outcome {
	case ratelimit.Allowed:
		b.all.Allowed++
	case ratelimit.Denied:
		b.all.Denied++
		b.denials.add(key, h, e.Outcome, c.hashKeys)
	case ratelimit.Failed:
		b.all.Failed++
	}
	b.traffic.add(key, h, e.Outcome, c.hashKeys)
	s.mu.Unlock()
}

// identify returns the part of key the Collector keeps and its hash: with HashKeys,
// the hash of the whole key identifies it.
func (c *Collector) identify(key string) (string, uint64) {
	if len(key) > c.keyBytes && !c.hashKeys {
		key = key[:c.keyBytes]
	}
	return key, maphash.String(c.seed, key)
}

// advance moves the shard to step now and returns the bucket that counts it. A step
// before the newest one counts in the newest: the clock went back.
func (s *shard) advance(now int64) *bucket {
	if now > s.epoch {
		// Clear the buckets of the steps skipped, at most all of them.
		n := int64(len(s.buckets))
		from := max(s.epoch+1, now-n+1)
		for e := from; e <= now; e++ {
			b := &s.buckets[e%n]
			b.epoch = e
			b.all = Counts{}
			b.traffic.reset()
			b.denials.reset()
		}
		s.epoch = now
		s.current = &s.buckets[now%n]
	}
	return s.current
}

// live reports whether b counts in a reading at step now.
func (c *Collector) live(b *bucket, now int64) bool {
	return b.epoch <= now && b.epoch > now-int64(c.nbuckets)
}

// Global returns the decisions of every key over the window: exact, whatever the number
// of keys.
func (c *Collector) Global() Counts {
	now := c.clock.now()
	var t Counts
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for j := range s.buckets {
			if b := &s.buckets[j]; c.live(b, now) {
				t.Allowed += b.all.Allowed
				t.Denied += b.all.Denied
				t.Failed += b.all.Failed
			}
		}
		s.mu.Unlock()
	}
	return t
}

// Stats returns the counts of key over the window (the key as observed, not its hash,
// with [Options.HashKeys]). A key never seen, or not tracked, has zero counts and its
// possible undercount in Missed.
func (c *Collector) Stats(key string) KeyStats {
	key, h := c.identify(key)
	now := c.clock.now()
	s := &c.shards[h>>61]
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.stats(s, key, h, now)
}

// stats returns the counts of the key kept as key, with hash h, in s, which is locked.
func (c *Collector) stats(s *shard, key string, h uint64, now int64) KeyStats {
	st := KeyStats{Key: c.report(key, h)}
	var denied uint64
	for j := range s.buckets {
		b := &s.buckets[j]
		if !c.live(b, now) {
			continue
		}
		if i := b.traffic.find(key, h, c.hashKeys); i >= 0 {
			sl := &b.traffic.slots[i]
			st.Allowed += sl.counts.Allowed
			st.Denied += sl.counts.Denied
			st.Failed += sl.counts.Failed
			st.Missed += sl.err
		} else {
			st.Missed += b.traffic.floor()
		}
		if i := b.denials.find(key, h, c.hashKeys); i >= 0 {
			denied += b.denials.slots[i].counts.Denied
			st.DeniedMissed += b.denials.slots[i].err
		} else {
			st.DeniedMissed += b.denials.floor()
		}
	}
	// Both summaries count the key's denials while they track it: either is a lower
	// bound of the truth, so the larger is the better one.
	st.Denied = max(st.Denied, denied)
	return st
}

// report returns the key as a Collector reports it: key itself, or its hash in hex.
func (c *Collector) report(key string, h uint64) string {
	if !c.hashKeys {
		return key
	}
	var b [hashLen]byte
	putHash(b[:], h)
	return string(b[:])
}

// Top returns the n keys with the most denials over the window, most first (ties by
// key), with their counts; keys with no denial counted are left out. It answers "who is
// being limited right now".
func (c *Collector) Top(n int) []KeyStats { return c.top(n, true) }

// TopTraffic returns the n keys with the most decisions over the window, most first
// (ties by key), with their counts.
func (c *Collector) TopTraffic(n int) []KeyStats { return c.top(n, false) }

func (c *Collector) top(n int, byDenials bool) []KeyStats {
	if n <= 0 {
		return nil
	}
	now := c.clock.now()
	var all []KeyStats
	seen := map[uint64]bool{}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(seen)
		for j := range s.buckets {
			b := &s.buckets[j]
			if !c.live(b, now) {
				continue
			}
			sm := &b.traffic
			if byDenials {
				sm = &b.denials
			}
			for k := range sm.n {
				h := sm.slots[k].hash
				if seen[h] {
					continue
				}
				seen[h] = true
				if st := c.stats(s, string(sm.key(k)), h, now); !byDenials || st.Denied > 0 {
					all = append(all, st)
				}
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if byDenials && a.Denied != b.Denied {
			return a.Denied > b.Denied
		}
		if a.Total() != b.Total() {
			return a.Total() > b.Total()
		}
		return a.Key < b.Key
	})
	if len(all) > n {
		all = all[:n:n]
	}
	return all
}

// putHash writes h in hexadecimal into b, which has hashLen bytes.
func putHash(b []byte, h uint64) {
	var raw [8]byte
	for i := range raw {
		raw[i] = byte(h >> (56 - 8*i))
	}
	hex.Encode(b, raw[:])
}
