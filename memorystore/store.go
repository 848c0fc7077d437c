// Package memorystore is the in-memory [ratelimit.Store], the embedded default.
//
// It is safe for concurrent use and allocates nothing when deciding for a key it already
// holds. Its memory is bounded: it holds at most about [Options.MaxKeys] (key, algorithm)
// states, about 52 bytes each for every algorithm but SlidingWindowLog, whatever the
// length of the keys.
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
// removes expired keys every [Options.SweepInterval] and gives their memory back. When the
// store is full, adding a key first evicts, among the keys stored next to where the new one
// goes, the one closest to expiry, so the state lost is the smallest. An evicted key starts
// over at full capacity: bounding memory can only ever grant more, never deny wrongly.
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
	// MaxKeys bounds the number of (key, algorithm) states held. Each shard of the store
	// holds at most its share, so eviction may start slightly below MaxKeys.
	// Default 1,048,576 (about 55 MB at the 52 bytes per key BenchmarkMemoryPerKey measures
	// for the O(1) algorithms at a million keys).
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
	stop         chan struct{}
	sweeperDone  chan struct{}
	closeOnce    sync.Once
}

var _ ratelimit.Store = (*Store)(nil)

type shard struct {
	mu    sync.Mutex
	table table
	logs  map[id]*logState // SlidingWindowLog keys
	_     [64]byte         // keep shards' locks on separate cache lines
}

type logState struct {
	log     algo.Log
	expires uint32
}

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
			sh.table, sh.logs = table{}, nil
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

// expiry converts the instant now+d to ticks since base, rounded up, plus one.
func (s *Store) expiry(now, d int64) uint32 {
	ticks := (now - s.baseNanos + d + 1<<tickShift - 1) >> tickShift
	return uint32(min(ticks+1, math.MaxUint32))
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

func (s *Store) check(ctx context.Context, key string) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return ratelimit.CheckKey(key)
}

// Take implements [ratelimit.Store].
func (s *Store) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	if err := s.check(ctx, key); err != nil {
		return ratelimit.Result{}, err
	}
	p, err := algo.NewParams(alg, limit)
	if err != nil {
		return ratelimit.Result{}, err
	}
	cost, err := p.Cost(n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	k := s.id(key, alg)
	sh := s.shard(k)
	// Reading the clock before taking the lock keeps the critical section short; a call
	// that reaches the lock after a later one is clamped by the algorithms, never over-granted.
	now := s.now()
	var d algo.Decision
	sh.mu.Lock()
	if alg == ratelimit.SlidingWindowLog {
		d = s.takeLog(sh, k, now, p, cost)
	} else {
		s.takeState(sh, k, alg, now, &p, cost, &d)
	}
	sh.mu.Unlock()
	return d.Result(p), nil
}

// takeState runs alg on k's state in place; sh is locked. A key seen for the first time is
// stored only once it holds something.
func (s *Store) takeState(sh *shard, k id, alg ratelimit.Algorithm, now int64, p *algo.Params, n uint64, d *algo.Decision) {
	t := &sh.table
	if i, found := t.find(k); found {
		sl := &t.slots[i]
		algo.Step(alg, &sl.state, now, p, n, d)
		if d.Allowed && n > 0 {
			sl.expires = s.expiry(now, d.ResetAfter)
		}
		return
	}
	st := algo.Init(alg, *p, now)
	algo.Step(alg, &st, now, p, n, d)
	if d.Allowed && n > 0 {
		i := s.insert(sh, k)
		t.slots[i] = slot{a: k.a, b: k.b, expires: s.expiry(now, d.ResetAfter), state: st}
	}
}

// lookup returns k's state, or the state of a new key; sh is locked.
func (s *Store) lookup(sh *shard, k id, alg ratelimit.Algorithm, now int64, p algo.Params) algo.State {
	if i, found := sh.table.find(k); found {
		return sh.table.slots[i].state
	}
	return algo.Init(alg, p, now)
}

// put stores st as k's state, valid until resetAfter from now; sh is locked.
func (s *Store) put(sh *shard, k id, now int64, st algo.State, resetAfter int64) {
	i, found := sh.table.find(k)
	if !found {
		i = s.insert(sh, k)
	}
	sh.table.slots[i] = slot{a: k.a, b: k.b, expires: s.expiry(now, resetAfter), state: st}
}

// insert makes room for k and returns the index of its empty slot.
func (s *Store) insert(sh *shard, k id) int {
	t := &sh.table
	if t.count+len(sh.logs) >= s.maxPerShard {
		s.evict(sh, k)
	}
	if t.full() {
		t.grow()
	}
	i, _ := t.find(k)
	t.count++
	return i
}

// evict removes one key from sh: of the entries stored from k's home slot on and a few
// logs, the one that expires first.
func (s *Store) evict(sh *shard, k id) {
	t := &sh.table
	slotVictim, logVictim := -1, id{}
	soonest := uint32(math.MaxUint32)
	if t.count > 0 {
		for i, seen := t.home(k), 0; seen < evictionSample; i = (i + 1) % len(t.slots) {
			if t.slots[i].empty() {
				continue
			}
			if e := t.slots[i].expires; slotVictim < 0 || e < soonest {
				slotVictim, soonest = i, e
			}
			seen++
		}
	}
	seen := 0
	for lk, ls := range sh.logs {
		if slotVictim < 0 && logVictim == (id{}) || ls.expires < soonest {
			logVictim, soonest = lk, ls.expires
		}
		if seen++; seen == evictionSample {
			break
		}
	}
	if logVictim != (id{}) {
		delete(sh.logs, logVictim)
	} else if slotVictim >= 0 {
		t.remove(slotVictim)
	}
}

func (s *Store) takeLog(sh *shard, k id, now int64, p algo.Params, n uint64) algo.Decision {
	ls := sh.logs[k]
	if ls == nil {
		var fresh logState
		d := fresh.log.Take(now, p, n)
		if !d.Allowed || n == 0 {
			return d
		}
		if sh.table.count+len(sh.logs) >= s.maxPerShard {
			s.evict(sh, k)
		}
		if sh.logs == nil {
			sh.logs = make(map[id]*logState)
		}
		ls = &fresh
		sh.logs[k] = ls
		ls.expires = s.expiry(now, d.ResetAfter)
		return d
	}
	d := ls.log.Take(now, p, n)
	if d.Allowed && n > 0 {
		ls.expires = s.expiry(now, d.ResetAfter)
	}
	return d
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
		delete(sh.logs, k)
		return nil
	}
	if i, found := sh.table.find(k); found {
		sh.table.remove(i)
	}
	return nil
}
