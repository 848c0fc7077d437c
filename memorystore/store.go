// Package memorystore is the in-memory [ratelimit.Store], the embedded default.
//
// It is safe for concurrent use and allocates nothing when deciding for a key it already
// holds. It is a [ratelimit.CompilingStore]: a [ratelimit.Limiter] on it validates and
// converts its limit once, not on every call; other callers of [Store.Take] find their
// limits in a cache of 64 compiled limits. Its memory is bounded by [Options.MaxKeys], whatever the keys and the algorithms.
//
// # Memory sizing
//
// A key of FixedWindow, SlidingWindowCounter, TokenBucket, LeakyBucket or GCRA takes about
// 52 bytes (measured at a million keys), whatever the length of the key, and counts as one
// key against MaxKeys. A SlidingWindowLog key records each instant at which units passed in
// its last Period (16 bytes each, up to Rate of them) and counts as one key plus one for
// every three instants it has room for, so a store of SlidingWindowLog keys needs about
// 60 bytes per key of MaxKeys however many instants its keys record (measured with keys of
// 300 instants each). Size the store as MaxKeys × 52 bytes, or × 64 bytes with
// SlidingWindowLog keys. The bound is kept per shard, each holding 1/64 of MaxKeys or less:
// a SlidingWindowLog key whose log alone needs more than its shard's share is kept whole,
// and the other keys of its shard are evicted for it, so keep the Rate of such keys below
// three times MaxKeys/64.
//
// # Key identity
//
// Keys are not stored: each (key, algorithm) pair is identified by a 96-bit hash keyed with
// a random seed chosen when the store is created. Two distinct keys share state only if
// their hashes collide, which for a million live keys has a probability below 10^-16, and
// cannot be provoked from outside since the seed is secret.
//
// # Expiry and eviction
//
// A key expires when its state is as good as new: its window has passed, its bucket is
// full again. One background goroutine, started by [New] and stopped by [Store.Close],
// removes expired keys every [Options.SweepInterval] and gives their memory back.
//
// When the store is full, adding a key (or growing a log) first evicts one of the keys
// stored next to where the new one goes (eight of them) and a few logs of the same shard:
// an expired key if there is one, else a key that has units left, else a key over its
// limit (its last decision left it no unit); within each group, the one closest to expiry.
// An evicted key starts over at full capacity: bounding memory can only ever grant more,
// never deny wrongly. The guarantee this gives: a key over its limit is evicted only when
// every key examined is over its limit too. So a flood of new keys, of any rule, cannot
// reset a key that is over its limit unless the flood keys exhaust their own limits; and
// then the key that is limited for the longest time (a day's key among a flood of keys
// limited per second) is evicted last.
//
// # Time
//
// The store reads the clock with [time.Now] when created and [time.Since] for each
// decision, so decisions follow the monotonic clock and work under [testing/synctest]. A
// store created in a synctest bubble must be closed in it.
package memorystore

import (
	"context"
	"hash/maphash"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// Options configures a Store. The zero value, or nil, gives the defaults.
type Options struct {
	// MaxKeys bounds the number of (key, algorithm) states held, with a SlidingWindowLog
	// key counting as one key plus one per three instants it has room for (see Memory
	// sizing in the package documentation). Each shard of the store holds at most its
	// share, so eviction may start slightly below MaxKeys. Default 1,048,576: a store
	// held at that bound by a flood of distinct GCRA keys measured 65 MB of live heap
	// (62 bytes per key: the tables are kept 64% to 80% full, and at the bound they sit
	// nearer the low end than the 52 bytes per key BenchmarkMemoryPerKey measures at a
	// million keys), with a peak of 87 MB in use while its tables grew.
	MaxKeys int

	// SweepInterval is how often expired keys are removed. Default 1 minute.
	SweepInterval time.Duration
}

const (
	defaultMaxKeys       = 1 << 20
	defaultSweepInterval = time.Minute
	evictionSample       = 8 // keys examined to choose which to evict
)

// Store is the in-memory Store. Create it with [New]; the zero value is not usable.
type Store struct {
	seedA, seedB maphash.Seed
	base         time.Time // reference instant: decisions use base + time.Since(base)
	baseNanos    int64     // base as Unix nanoseconds
	shards       []shard
	shardShift   uint // shard index = id.b >> shardShift
	maxPerShard  int
	closed       atomic.Bool
	limits       [limitCache]atomic.Pointer[compiled]
	stop         chan struct{}
	sweeperDone  chan struct{}
	closeOnce    sync.Once
}

var _ ratelimit.Store = (*Store)(nil)

// limitCache is the number of compiled limits a store keeps: a limit is validated and
// converted to the algorithms' integers once, not on every call.
const (
	limitCacheBits = 6
	limitCache     = 1 << limitCacheBits
)

// compiled is a limit under an algorithm, validated and converted. Shared, never modified.
type compiled struct {
	alg   ratelimit.Algorithm
	limit ratelimit.Limit
	p     algo.Params
	eff   ratelimit.Limit // the effective limit a Result reports: p.Limit()
}

// params returns alg and limit compiled, from the cache when they are in it, else in
// *buf. A limit missing from the cache takes its slot only if the slot is free, so that
// callers alternating between limits that share a slot do not allocate on each call.
func (s *Store) params(alg ratelimit.Algorithm, limit ratelimit.Limit, buf *compiled) (*compiled, error) {
	h := (uint64(limit.Rate) ^ uint64(limit.Period)>>10 ^ uint64(limit.Burst)<<20 ^ uint64(alg)<<40) * 0x9e3779b97f4a7c15
	c := &s.limits[h>>(64-limitCacheBits)]
	if e := c.Load(); e != nil && e.limit == limit && e.alg == alg {
		return e, nil
	}
	p, err := algo.NewParams(alg, limit)
	if err != nil {
		return nil, err
	}
	*buf = compiled{alg: alg, limit: limit, p: p, eff: p.Limit()}
	if c.Load() == nil {
		shared := *buf
		c.Store(&shared)
	}
	return buf, nil
}

// result converts d to the public form under c.
func (c *compiled) result(d *algo.Decision) ratelimit.Result {
	return ratelimit.Result{
		Allowed:    d.Allowed,
		Limit:      c.eff,
		Remaining:  int(min(d.Remaining, math.MaxInt)),
		RetryAfter: time.Duration(d.RetryAfter),
		ResetAfter: time.Duration(d.ResetAfter),
	}
}

type shard struct {
	mu       sync.Mutex
	table    table
	logs     map[id]*logState // SlidingWindowLog keys
	logUnits int              // what logs count against the shard's bound: logUnits(l) summed
	_        [64]byte         // keep shards' locks on separate cache lines
}

// used returns what the shard's keys count against its bound; sh is locked.
func (sh *shard) used() int { return sh.table.count + sh.logUnits }

type logState struct {
	log     algo.Log
	expires uint32 // as slot.expires, with the overLimit bit
}

// logInstants is the number of instants a SlidingWindowLog key records for each key of
// the bound it counts as: an instant takes 16 bytes, a key of the other algorithms about 50.
const logInstants = 3

// logUnits returns what a log counts against the bound: one key for the key itself, and
// one for every logInstants instants of room it holds, rounded up.
func logUnits(l *algo.Log) int { return 1 + (l.Room()+logInstants-1)/logInstants }

// New returns a Store configured by opts (nil means defaults) and starts its sweeper.
// Call [Store.Close] to stop it.
func New(opts *Options) *Store {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = defaultMaxKeys
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = defaultSweepInterval
	}
	// At least 64 shards, and about 16 per CPU, so that goroutines rarely meet on a lock;
	// fewer when MaxKeys is small so each can hold 64 keys.
	n := 1
	for n < max(64, 16*runtime.GOMAXPROCS(0)) && o.MaxKeys/(2*n) >= 64 {
		n *= 2
	}
	base := time.Now()
	s := &Store{
		seedA:       maphash.MakeSeed(),
		seedB:       maphash.MakeSeed(),
		base:        base,
		baseNanos:   base.UnixNano(),
		shards:      make([]shard, n),
		shardShift:  uint(32 - bitsLen(n-1)),
		maxPerShard: max(1, o.MaxKeys/n),
		stop:        make(chan struct{}),
		sweeperDone: make(chan struct{}),
	}
	go s.sweep(o.SweepInterval)
	return s
}

func bitsLen(x int) int {
	n := 0
	for ; x > 0; x >>= 1 {
		n++
	}
	return n
}

// Close stops the sweeper, waits for it to exit, and frees the state. Later calls return
// an error wrapping [ratelimit.ErrClosed]. Close is idempotent and always returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.sweeperDone
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			sh.table, sh.logs, sh.logUnits = table{}, nil, 0
			sh.mu.Unlock()
		}
	})
	return nil
}

// Len returns the number of (key, algorithm) states held, expired ones not yet swept
// included.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.table.count + len(sh.logs)
		sh.mu.Unlock()
	}
	return n
}

// now returns the current instant in Unix nanoseconds.
func (s *Store) now() int64 { return s.baseNanos + int64(time.Since(s.base)) }

// tickShift sets the unit of expiry instants: 2^30 ns, about 1.07 s, so converting is a
// shift rather than a division.
const tickShift = 30

// overLimit is the top bit of an expiry: set when the key's last decision left it no
// unit. Eviction spares such keys while it has others to choose from.
const overLimit = 1 << 31

// expiry converts the instant now+d to ticks since base, rounded up, plus one. It stays
// below overLimit: expiries more than 2^31 ticks (about 73 years) away are read as that.
func (s *Store) expiry(now, d int64) uint32 {
	ticks := (now - s.baseNanos + d + 1<<tickShift - 1) >> tickShift
	return uint32(min(ticks+1, overLimit-1))
}

// mark returns expires with the overLimit bit set when d left the key no unit.
func mark(expires uint32, d *algo.Decision) uint32 {
	if d.Remaining == 0 {
		return expires | overLimit
	}
	return expires &^ overLimit
}

func (s *Store) id(key string, alg ratelimit.Algorithm) id {
	return id{
		a: maphash.String(s.seedA, key) ^ uint64(alg)*0x9e3779b97f4a7c15,
		b: uint32(maphash.String(s.seedB, key)) | 1,
	}
}

func (s *Store) shard(k id) *shard { return &s.shards[k.b>>s.shardShift] }

// ready reports whether the store can decide now.
func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return ratelimit.ErrClosed
	}
	return ctx.Err()
}

// check reports whether the store can decide now on key.
func (s *Store) check(ctx context.Context, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if key == "" || len(key) > ratelimit.MaxKeyLen { // CheckKey's cases, tested here so that valid keys skip the call
		return ratelimit.CheckKey(key)
	}
	return nil
}

// Take implements [ratelimit.Store].
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	if err := s.check(ctx, key); err != nil {
		return ratelimit.Result{}, err
	}
	var buf compiled
	c, err := s.params(alg, limit, &buf)
	if err != nil {
		return ratelimit.Result{}, err
	}
	var d algo.Decision
	if err := s.decide(key, c, n, &d); err != nil {
		return ratelimit.Result{}, err
	}
	return c.result(&d), nil
}

var _ ratelimit.CompilingStore = (*Store)(nil)

// Compile implements [ratelimit.CompilingStore]: the returned limit's Take is Take under
// alg and limit, without looking them up.
func (s *Store) Compile(alg ratelimit.Algorithm, limit ratelimit.Limit) (ratelimit.CompiledLimit, error) {
	p, err := algo.NewParams(alg, limit)
	if err != nil {
		return nil, err
	}
	return &compiledLimit{s: s, c: compiled{alg: alg, limit: limit, p: p, eff: p.Limit()}}, nil
}

// compiledLimit is a limit compiled by Compile.
type compiledLimit struct {
	s *Store
	c compiled
}

// Take implements [ratelimit.CompiledLimit].
func (l *compiledLimit) Take(ctx context.Context, key string, n int) (ratelimit.Result, error) {
	if err := l.s.check(ctx, key); err != nil {
		return ratelimit.Result{}, err
	}
	var d algo.Decision
	if err := l.s.decide(key, &l.c, n, &d); err != nil {
		return ratelimit.Result{}, err
	}
	return l.c.result(&d), nil
}

// decide takes n units of key under c, and writes the decision to *d; ctx and key are
// checked.
func (s *Store) decide(key string, c *compiled, n int, d *algo.Decision) error {
	if n < 0 || uint64(n) > c.p.Cap {
		_, err := c.p.Cost(n)
		return err
	}
	k := s.id(key, c.alg)
	sh := s.shard(k)
	// Reading the clock before taking the lock keeps the critical section short; a call
	// that reaches the lock after a later one is clamped by the algorithms, never over-granted.
	// A call that had to wait for the lock and is denied is decided again at the instant it
	// holds it: the wait (behind many goroutines on few cores it can last longer than a
	// window) must not count against it. A denial changes no state, so deciding again is
	// safe, and it costs a second clock read only on that path.
	now := s.now()
	waited := !sh.mu.TryLock()
	if waited {
		sh.mu.Lock()
	}
	for {
		if c.alg == ratelimit.SlidingWindowLog {
			*d = s.takeLog(sh, k, now, c.p, uint64(n))
		} else {
			s.takeState(sh, k, c.alg, now, &c.p, uint64(n), d)
		}
		if d.Allowed || !waited {
			break
		}
		now, waited = s.now(), false
	}
	sh.mu.Unlock()
	return nil
}

// takeState runs alg on k's state in place; sh is locked. A key seen for the first time is
// stored only once it holds something.
func (s *Store) takeState(sh *shard, k id, alg ratelimit.Algorithm, now int64, p *algo.Params, n uint64, d *algo.Decision) {
	t := &sh.table
	if i, found := t.find(k); found {
		sl := &t.slots[i]
		algo.Step(alg, &sl.state, now, p, n, d)
		e := sl.expires
		if d.Allowed && n > 0 {
			e = s.expiry(now, d.ResetAfter)
		}
		sl.expires = mark(e, d)
		return
	}
	st := algo.Init(alg, *p, now)
	algo.Step(alg, &st, now, p, n, d)
	if d.Allowed && n > 0 {
		i := s.insert(sh, k, now)
		t.slots[i] = slot{a: k.a, b: k.b, expires: mark(s.expiry(now, d.ResetAfter), d), state: st}
	}
}

// lookup returns k's state, or the state of a new key; sh is locked.
func (s *Store) lookup(sh *shard, k id, alg ratelimit.Algorithm, now int64, p algo.Params) algo.State {
	if i, found := sh.table.find(k); found {
		return sh.table.slots[i].state
	}
	return algo.Init(alg, p, now)
}

// put stores st as k's state after decision d at now; sh is locked.
func (s *Store) put(sh *shard, k id, now int64, st algo.State, d *algo.Decision) {
	i, found := sh.table.find(k)
	if !found {
		i = s.insert(sh, k, now)
	}
	sh.table.slots[i] = slot{a: k.a, b: k.b, expires: mark(s.expiry(now, d.ResetAfter), d), state: st}
}

// insert makes room for k and returns the index of its empty slot.
func (s *Store) insert(sh *shard, k id, now int64) int {
	t := &sh.table
	if sh.used() >= s.maxPerShard {
		s.evict(sh, k, now)
	}
	if t.full() {
		t.grow()
	}
	i, _ := t.find(k)
	t.count++
	return i
}

// evictRank orders eviction candidates, lowest first: expired keys (as good as new, so
// forgetting them changes nothing), then keys with units left, then keys over their limit;
// within each, the one that expires first, whose state is the closest to new.
func evictRank(expires, now uint32) uint64 {
	e := expires &^ overLimit
	switch {
	case e <= now:
		return 0
	case expires&overLimit == 0:
		return 1<<32 | uint64(e)
	}
	return 2<<32 | uint64(e)
}

// evict removes one key from sh other than k: of the entries stored from k's home slot on
// and a few logs, the lowest by evictRank. It reports whether it removed one.
func (s *Store) evict(sh *shard, k id, now int64) bool {
	t := &sh.table
	tick := s.expiry(now, 0) - 1
	slotVictim, logVictim := -1, id{}
	best := uint64(math.MaxUint64)
	if t.count > 0 {
		for i, seen := t.home(k), 0; seen < min(evictionSample, t.count); i = (i + 1) % len(t.slots) {
			if t.slots[i].empty() {
				continue
			}
			if r := evictRank(t.slots[i].expires, tick); r < best {
				slotVictim, best = i, r
			}
			seen++
		}
	}
	seen := 0
	for lk, ls := range sh.logs {
		if lk == k {
			continue
		}
		if r := evictRank(ls.expires, tick); r < best {
			logVictim, best = lk, r
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	switch {
	case logVictim != (id{}):
		s.dropLog(sh, logVictim)
	case slotVictim >= 0:
		t.remove(slotVictim)
	default:
		return false
	}
	return true
}

// dropLog forgets the log of k; sh is locked.
func (s *Store) dropLog(sh *shard, k id) {
	if ls := sh.logs[k]; ls != nil {
		sh.logUnits -= logUnits(&ls.log)
		delete(sh.logs, k)
	}
}

// takeLog runs SlidingWindowLog on k's log; sh is locked. A log that grows counts its
// room against the shard's bound, and other keys are evicted to keep within it.
func (s *Store) takeLog(sh *shard, k id, now int64, p algo.Params, n uint64) algo.Decision {
	ls := sh.logs[k]
	if ls == nil {
		var fresh logState
		d := fresh.log.Take(now, p, n)
		if !d.Allowed || n == 0 {
			return d
		}
		if sh.logs == nil {
			sh.logs = make(map[id]*logState)
		}
		ls = &fresh
		sh.logs[k] = ls
		ls.expires = mark(s.expiry(now, d.ResetAfter), &d)
		sh.logUnits += logUnits(&ls.log)
		s.keepBound(sh, k, now)
		return d
	}
	units := logUnits(&ls.log)
	d := ls.log.Take(now, p, n)
	e := ls.expires
	if d.Allowed && n > 0 {
		e = s.expiry(now, d.ResetAfter)
		if grown := logUnits(&ls.log) - units; grown > 0 {
			sh.logUnits += grown
			s.keepBound(sh, k, now)
		}
	}
	ls.expires = mark(e, &d)
	return d
}

// keepBound evicts keys other than k until the shard is within its bound, or k is all it
// holds; sh is locked.
func (s *Store) keepBound(sh *shard, k id, now int64) {
	for sh.used() > s.maxPerShard && s.evict(sh, k, now) {
	}
}

// Reset implements [ratelimit.Store].
func (s *Store) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	if !alg.Valid() {
		return ratelimit.ErrInvalidAlgorithm
	}
	k := s.id(key, alg)
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if alg == ratelimit.SlidingWindowLog {
		s.dropLog(sh, k)
		return nil
	}
	if i, found := sh.table.find(k); found {
		sh.table.remove(i)
	}
	return nil
}
