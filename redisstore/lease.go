package redisstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/lease/*.lua
var leaseFiles embed.FS

// leaseGrant takes up to n units of one key by the algorithm's own step (the bodies of the
// single decisions, unchanged); leaseRelease gives unspent units back.
var leaseGrant, leaseRelease = loadLeaseScripts()

func loadLeaseScripts() (*script, *script) {
	read := func(name string) string {
		b, err := leaseFiles.ReadFile(name)
		if err != nil {
			panic("redisstore: missing embedded script " + name) // a build error
		}
		return string(b)
	}
	grant := mustRead("lua/prelude.lua") + "\n" + mustRead("lua/fixed_window.lua") + "\n" +
		mustRead("lua/sliding_window_counter.lua") + "\n" + read("lua/lease/grant.lua")
	return newScript(grant), newScript(read("lua/lease/release.lua"))
}

// LeaseOptions configures a [LeaseStore]. A nil *LeaseOptions, and every zero field, means
// the default.
type LeaseOptions struct {
	// Options are those of the strict [Store]: Prefix (a LeaseStore shares its keys with a
	// Store of the same prefix), Timeout (of each round trip; no decision waits on one, so
	// the default is DefaultLeaseTimeout, longer than a Store's), MaxRetries and
	// RetryBackoff (grants only: a release is never retried), the breaker, and Policy, Local
	// and OnError, which apply to a decision that its lease cannot serve while Redis is
	// unavailable.
	Options

	// Accuracy is ε: a process holds at most max(1, ⌊ε·Rate⌋) unspent units of a key, so
	// N processes leave at most N·max(1, ⌊ε·Rate⌋) units of a window unused (see the
	// package documentation). Smaller means fewer units stranded and more round trips.
	// Between 0 and 1; default 0.01.
	Accuracy float64

	// Interval is the time scale of the background work: a lease that lasted less than
	// one Interval doubles for its next refill, one that lasted more than four halves; a
	// key whose lease ran out while Redis was unavailable is retried after one Interval;
	// keys idle for IdleAfter are released and dropped by a sweep every Interval. Refills
	// themselves do not wait for it: they are sent as soon as a lease runs low. Default
	// 100ms.
	Interval time.Duration

	// IdleAfter is how long a key may go without a decision before its unspent units are
	// given back to Redis and it leaves local memory. Default 10 Intervals.
	IdleAfter time.Duration

	// MaxKeys bounds the keys held in local memory (each shard of the store holds at
	// most 1/64 of it, so eviction may start slightly below). A new key beyond it evicts
	// the least recently used of eight keys of its shard, whose unspent units are given
	// back to Redis in the next round trip, as an idle key's are. Default 1,048,576.
	MaxKeys int

	// FirstWait is how long a key's first decision in this store, which finds no lease
	// yet, may wait for its first grant, within the caller's context; a later decision
	// never waits. 0, the default, never waits: the first call is denied with a
	// RetryAfter of one round trip while its lease is on the way.
	FirstWait time.Duration
}

// Default values of LeaseOptions.
const (
	DefaultLeaseAccuracy = 0.01
	DefaultLeaseInterval = 100 * time.Millisecond
	DefaultLeaseTimeout  = 500 * time.Millisecond
	DefaultLeaseMaxKeys  = 1 << 20
)

// LeaseStore is a [ratelimit.Store] that decides from leases held in local memory: units
// taken from Redis in chunks by an atomic script and spent locally, so a decision costs a
// lock and a few integers, never a round trip, and no key is ever over-admitted. It decides
// [ratelimit.FixedWindow] and [ratelimit.SlidingWindowCounter] only (see the package
// documentation for why, and for the bounds). Create it with [NewLease]; it is safe for
// concurrent use, and owns one background goroutine, which [LeaseStore.Close] stops.
type LeaseStore struct {
	strict   *Store    // validation, key layout, retries, breaker and policy answers
	conn     leaseConn // the pipelined round trips
	accuracy float64
	interval int64 // nanoseconds
	idle     int64
	first    time.Duration
	shardMax int       // keys one shard holds at most
	base     time.Time // origin of the local monotonic clock
	seed     maphash.Seed
	shards   [leaseShards]leaseShard

	run     context.Context // of the background round trips; cancelled by Close
	stopRun context.CancelFunc
	pendMu  sync.Mutex
	pending []*lease // to refill
	evicted []*lease // to release
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	closed  atomic.Bool

	down atomic.Bool  // the last round trip failed
	rtt  atomic.Int64 // nanoseconds of the last successful refill round trip

	decisions, allowed, rounds, scripts, granted, released, lost, evictions atomic.Uint64
}

const leaseShards = 64

// leaseShard holds the leases whose hash falls in it, by hash: one hash of the key finds
// its shard and its lease. Leases whose hashes collide are chained by next.
type leaseShard struct {
	mu sync.RWMutex
	m  map[uint64]*lease
	_  [40]byte // keep shards on separate cache lines
}

type leaseKey struct {
	key string
	alg ratelimit.Algorithm
}

// lease is one key's local state. Every field but next is guarded by mu; next, by the
// shard's mu.
type lease struct {
	mu sync.Mutex
	// What a decision reads and writes, together.
	units   uint64 // granted and unspent, valid until expires
	expires int64  // local ns at which that window ends, at the latest
	left    uint64 // what Redis had left after the last grant
	chunk   uint64 // size of the next lease
	wait    int64  // local ns before which no refill is asked (Redis had none, or failed)
	used    int64  // local ns of the last decision
	pending bool   // queued for a refill, or one in flight
	gone    bool   // dropped from its shard: a new lease takes its place

	decided, allowed uint64 // decisions and admissions not yet added to the store's counters
	p                algo.Params

	k     leaseKey
	hash  uint64
	next  *lease // of the same hash
	rkey  string
	start int64         // start of the window the units were granted in, Redis µs
	since int64         // local ns of the last grant received
	want  uint64        // units the pending refill must bring at least
	first chan struct{} // closed when the first grant's reply is applied; nil when none waits
}

var _ ratelimit.Store = (*LeaseStore)(nil)

// NewLease returns a LeaseStore on client, configured by opts (nil means defaults). The
// caller owns client: [LeaseStore.Close] does not close it.
func NewLease(client redis.UniversalClient, opts *LeaseOptions) *LeaseStore {
	return openLease(&goRedis{c: client}, opts)
}

// NewLeaseFrom returns a LeaseStore that sends its round trips through the client of
// store, whichever it is: go-redis ([New]), rueidis ([NewRueidis], whose DoMulti carries
// each refill), or the client [DialRueidis] is connecting, so that a service opens one
// client for both modes and starts while Redis is down. Only the client is shared: opts
// configures the LeaseStore as for [NewLease] (give it store's Prefix for the two to
// share keys). Close the LeaseStore before store, which may close the client.
func NewLeaseFrom(store *Store, opts *LeaseOptions) *LeaseStore {
	return openLease(store.backend, opts)
}

func openLease(b backend, opts *LeaseOptions) *LeaseStore {
	var o LeaseOptions
	if opts != nil {
		o = *opts
	}
	s := &LeaseStore{
		conn:     leaseConnOf(b),
		accuracy: o.Accuracy,
		interval: int64(o.Interval),
		idle:     int64(o.IdleAfter),
		base:     time.Now(),
		seed:     maphash.MakeSeed(),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultLeaseTimeout
	}
	s.strict = build(b, &o.Options)
	if s.accuracy == 0 {
		s.accuracy = DefaultLeaseAccuracy
	}
	if !(s.accuracy > 0 && s.accuracy <= 1) && s.strict.configErr == nil {
		s.strict.configErr = fmt.Errorf("redisstore: lease accuracy %v is not in (0, 1]", o.Accuracy)
	}
	if s.interval <= 0 {
		s.interval = int64(DefaultLeaseInterval)
	}
	if s.idle <= 0 {
		s.idle = 10 * s.interval
	}
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultLeaseMaxKeys
	}
	s.shardMax = max(1, maxKeys/leaseShards)
	s.first = max(o.FirstWait, 0)
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*lease)
	}
	s.run, s.stopRun = context.WithCancel(context.Background())
	go s.loop()
	return s
}

func (s *LeaseStore) now() int64 { return int64(time.Since(s.base)) }

// maxChunk returns the most units one process holds of a key under p.
func (s *LeaseStore) maxChunk(p algo.Params) uint64 {
	return max(1, uint64(s.accuracy*float64(p.Rate)))
}

// Take implements [ratelimit.Store] from the key's local lease. It never waits on Redis:
// when the lease is short, the call is denied and a refill is sent at once by the store's
// goroutine; RetryAfter is then the last round trip's duration (or, when Redis has nothing
// left in the window, the time until the window ends). While Redis is unavailable, a call
// the lease cannot serve is answered by [Options.Policy].
//
// Remaining is the lease's units plus what Redis had left at the last grant: an estimate
// shared with the other processes. ResetAfter is the time until the lease's window ends.
func (s *LeaseStore) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	p, cost, err := s.strict.params(ctx, key, alg, limit, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	if alg != ratelimit.FixedWindow && alg != ratelimit.SlidingWindowCounter {
		return ratelimit.Result{}, fmt.Errorf("%w: redisstore: the lease strategy decides fixed_window and sliding_window_counter, not %v", ratelimit.ErrInvalidAlgorithm, alg)
	}
	now := s.now()
	e := s.entry(key, alg)
	allowed, d, first := s.decide(e, now, p, cost, 1)
	if first != nil {
		allowed, d = s.waitFirst(ctx, e, first, p, cost)
	}
	if !allowed && s.down.Load() {
		return s.strict.guard.Answer(ctx, key, alg, limit, n, p, fmt.Errorf("redisstore: take %q: %w", key, errLeaseDown))
	}
	return d.Result(p), nil
}

// decide spends cost units of e's lease at now, asking for a refill when it runs low, and
// counts calls decisions (0 when deciding a call again). It returns, besides the decision,
// the channel a first decision may wait on: not nil only when the store waits for first
// grants and e has had none.
func (s *LeaseStore) decide(e *lease, now int64, p algo.Params, cost, calls uint64) (bool, algo.Decision, chan struct{}) {
	e.mu.Lock()
	for e.gone { // dropped by the sweep, eviction or Reset after the lookup
		e.mu.Unlock()
		e = s.entry(e.k.key, e.k.alg)
		e.mu.Lock()
	}
	if e.p != p { // a new key, or a changed limit: the first lease is the largest
		e.p = p
		e.chunk = max(s.maxChunk(p), cost)
	}
	e.decided += calls
	allowed, ask := e.spend(now, cost)
	if ask {
		s.enqueue(e)
	}
	d := e.decision(now, allowed, s.rtt.Load())
	var first chan struct{}
	if !allowed && s.first > 0 && e.since == 0 && e.pending {
		if e.first == nil {
			e.first = make(chan struct{})
		}
		first = e.first
	}
	e.mu.Unlock()
	return allowed, d, first
}

// waitFirst waits for the first grant of e, at most FirstWait and within ctx, then
// decides again; that decision does not wait.
func (s *LeaseStore) waitFirst(ctx context.Context, e *lease, first chan struct{}, p algo.Params, cost uint64) (bool, algo.Decision) {
	t := time.NewTimer(s.first)
	select {
	case <-first:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	allowed, d, _ := s.decide(e, s.now(), p, cost, 0)
	return allowed, d
}

// errLeaseDown is the cause of a policy answer: the lease could not serve the call and the
// last round trip to Redis failed.
var errLeaseDown = errors.New("lease exhausted while Redis is unavailable")

// hash returns the hash of (key, alg), which picks the shard and the lease in it.
func (s *LeaseStore) hash(key string, alg ratelimit.Algorithm) uint64 {
	return maphash.String(s.seed, key) ^ uint64(alg)*0x9e3779b97f4a7c15
}

// shard returns the shard of hash h.
func (s *LeaseStore) shard(h uint64) *leaseShard { return &s.shards[h>>58] }

// find returns the lease of (key, alg) in sh's chain for h, or nil. The caller holds sh.mu.
func (sh *leaseShard) find(h uint64, key string, alg ratelimit.Algorithm) *lease {
	e := sh.m[h]
	for e != nil && (e.k.alg != alg || e.k.key != key) {
		e = e.next
	}
	return e
}

// entry returns the lease of (key, alg), creating it.
func (s *LeaseStore) entry(key string, alg ratelimit.Algorithm) *lease {
	h := s.hash(key, alg)
	sh := s.shard(h)
	sh.mu.RLock()
	e := sh.find(h, key, alg)
	sh.mu.RUnlock()
	if e != nil {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.find(h, key, alg); e == nil {
		if len(sh.m) >= s.shardMax {
			s.evictOne(sh)
		}
		e = &lease{k: leaseKey{key, alg}, hash: h, rkey: s.strict.key(key, alg), next: sh.m[h]}
		sh.m[h] = e
	}
	return e
}

// drop removes e from sh, whose mu the caller holds, as e.mu, and marks it gone, adding
// its counts to the store's.
func (s *LeaseStore) drop(sh *leaseShard, e *lease) {
	e.gone = true
	s.fold(e)
	if p := sh.m[e.hash]; p == e {
		if e.next != nil {
			sh.m[e.hash] = e.next
		} else {
			delete(sh.m, e.hash)
		}
	} else {
		for ; p != nil; p = p.next {
			if p.next == e {
				p.next = e.next
				break
			}
		}
	}
}

// fold adds e's decisions and admissions to the store's counters. The caller holds e.mu.
func (s *LeaseStore) fold(e *lease) {
	s.decisions.Add(e.decided)
	s.allowed.Add(e.allowed)
	e.decided, e.allowed = 0, 0
}

// evictionSample is the number of keys examined to choose the one to evict.
const evictionSample = 8

// evictOne drops the least recently used of a few leases of sh, whose mu the caller
// holds, preferring one without a refill in flight, and queues its unspent units to be
// given back.
func (s *LeaseStore) evictOne(sh *leaseShard) {
	var victim *lease
	var victimUsed int64
	var victimPending bool
	seen := 0
	for _, head := range sh.m { // map order is random: a sample
		for e := head; e != nil && seen < evictionSample; e = e.next {
			seen++
			e.mu.Lock()
			used, pending := e.used, e.pending
			e.mu.Unlock()
			if victim == nil || victimPending && !pending || pending == victimPending && used < victimUsed {
				victim, victimUsed, victimPending = e, used, pending
			}
		}
		if seen >= evictionSample {
			break
		}
	}
	if victim == nil {
		return
	}
	victim.mu.Lock()
	s.drop(sh, victim)
	victim.mu.Unlock()
	s.evictions.Add(1)
	s.pendMu.Lock()
	s.evicted = append(s.evicted, victim)
	s.pendMu.Unlock()
	s.signal()
}

// Reset implements [ratelimit.Store]: it drops the key's local lease and deletes its state
// in Redis, as [Store.Reset] does. Other processes keep the leases they hold.
func (s *LeaseStore) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if err := s.strict.Reset(ctx, key, alg); err != nil {
		return err
	}
	h := s.hash(key, alg)
	sh := s.shard(h)
	sh.mu.Lock()
	if e := sh.find(h, key, alg); e != nil {
		e.mu.Lock()
		s.drop(sh, e)
		e.units = 0
		e.mu.Unlock()
	}
	sh.mu.Unlock()
	return nil
}

// Close stops the store's goroutine, ending a refill in flight, and gives the unspent
// units of every lease back to Redis in one round trip, bounded by ctx and
// [Options.Timeout]: a process that exits strands nothing. Later calls return an error wrapping [ratelimit.ErrClosed]. The client
// stays open. Close is idempotent; only the first call releases, and returns the error of
// the release, if any.
func (s *LeaseStore) Close(ctx context.Context) error {
	var err error
	s.closing.Do(func() {
		s.closed.Store(true)
		s.strict.closed.Store(true)
		s.stopRun() // a refill in flight ends now: its units, if granted, are never spent
		close(s.stop)
		<-s.done
		var all []*lease
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			n := len(all)
			for _, head := range sh.m {
				for e := head; e != nil; e = e.next {
					all = append(all, e)
				}
			}
			for _, e := range all[n:] {
				e.mu.Lock()
				s.drop(sh, e)
				e.mu.Unlock()
			}
			sh.mu.Unlock()
		}
		s.pendMu.Lock()
		all = append(all, s.evicted...)
		s.evicted = nil
		s.pendMu.Unlock()
		err = s.release(ctx, all)
		s.strict.guard.Close()
	})
	return err
}

// LeaseStats are counters of a LeaseStore since NewLease. Each is monotonic.
type LeaseStats struct {
	Decisions uint64 // Take calls that passed validation
	Allowed   uint64 // of those, allowed from a lease
	Rounds    uint64 // round trips to Redis (refills and releases)
	Scripts   uint64 // scripts sent to Redis, one per key per round trip
	Granted   uint64 // units Redis granted
	Released  uint64 // unspent units given back
	Lost      uint64 // units asked for or held whose fate is unknown (a failed round trip): never spent
	Failures  uint64 // round trips that failed
	Evicted   uint64 // keys dropped from local memory by MaxKeys
	Keys      int    // keys in local memory now
}

// Stats returns the store's counters. It visits every key in local memory: decisions
// are counted per key, with no shared counter on their path.
func (s *LeaseStore) Stats() LeaseStats {
	keys := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				keys++
				e.mu.Lock()
				s.fold(e)
				e.mu.Unlock()
			}
		}
		sh.mu.RUnlock()
	}
	return LeaseStats{
		Keys:      keys,
		Evicted:   s.evictions.Load(),
		Decisions: s.decisions.Load(),
		Allowed:   s.allowed.Load(),
		Rounds:    s.rounds.Load(),
		Scripts:   s.scripts.Load(),
		Granted:   s.granted.Load(),
		Released:  s.released.Load(),
		Lost:      s.lost.Load(),
		Failures:  s.strict.guard.Stats().Failures,
	}
}
