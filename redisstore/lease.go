package redisstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
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
}

// Default values of LeaseOptions.
const (
	DefaultLeaseAccuracy = 0.01
	DefaultLeaseInterval = 100 * time.Millisecond
	DefaultLeaseTimeout  = 500 * time.Millisecond
)

// LeaseStore is a [ratelimit.Store] that decides from leases held in local memory: units
// taken from Redis in chunks by an atomic script and spent locally, so a decision costs a
// lock and a few integers, never a round trip, and no key is ever over-admitted. It decides
// [ratelimit.FixedWindow] and [ratelimit.SlidingWindowCounter] only (see the package
// documentation for why, and for the bounds). Create it with [NewLease]; it is safe for
// concurrent use, and owns one background goroutine, which [LeaseStore.Close] stops.
type LeaseStore struct {
	strict   *Store // validation, key layout, retries, breaker and policy answers
	client   redis.UniversalClient
	accuracy float64
	interval int64 // nanoseconds
	idle     int64
	base     time.Time // origin of the local monotonic clock
	seed     maphash.Seed
	shards   [leaseShards]leaseShard

	run     context.Context // of the background round trips; cancelled by Close
	stopRun context.CancelFunc
	pendMu  sync.Mutex
	pending []*lease
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	closed  atomic.Bool

	down atomic.Bool  // the last round trip failed
	rtt  atomic.Int64 // nanoseconds of the last successful refill round trip

	decisions, allowed, rounds, scripts, granted, released, lost atomic.Uint64
}

const leaseShards = 64

type leaseShard struct {
	mu sync.RWMutex
	m  map[leaseKey]*lease
	_  [40]byte // keep shards on separate cache lines
}

type leaseKey struct {
	key string
	alg ratelimit.Algorithm
}

// lease is one key's local state. Every field is guarded by mu.
type lease struct {
	mu      sync.Mutex
	k       leaseKey
	rkey    string
	p       algo.Params
	units   uint64 // granted and unspent, valid until expires
	start   int64  // start of the window the units were granted in, Redis µs
	expires int64  // local ns at which that window ends, at the latest
	left    uint64 // what Redis had left after the last grant
	chunk   uint64 // size of the next lease
	since   int64  // local ns of the last grant received
	pending bool   // queued for a refill, or one in flight
	want    uint64 // units the pending refill must bring at least
	wait    int64  // local ns before which no refill is asked (Redis had none, or failed)
	used    int64  // local ns of the last decision
	gone    bool   // dropped from its shard: a new lease takes its place
}

var _ ratelimit.Store = (*LeaseStore)(nil)

// NewLease returns a LeaseStore on client, configured by opts (nil means defaults). The
// caller owns client: [LeaseStore.Close] does not close it.
func NewLease(client redis.UniversalClient, opts *LeaseOptions) *LeaseStore {
	var o LeaseOptions
	if opts != nil {
		o = *opts
	}
	s := &LeaseStore{
		client:   client,
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
	s.strict = build(&goRedis{c: client}, &o.Options)
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
	for i := range s.shards {
		s.shards[i].m = make(map[leaseKey]*lease)
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
	s.decisions.Add(1)
	now := s.now()
	e := s.entry(key, alg)
	e.mu.Lock()
	for e.gone { // dropped by the sweep or Reset after the lookup
		e.mu.Unlock()
		e = s.entry(key, alg)
		e.mu.Lock()
	}
	if e.p != p { // a new key, or a changed limit: the first lease is the largest
		e.p = p
		e.chunk = max(s.maxChunk(p), cost)
	}
	e.used = now
	if now >= e.expires {
		e.units = 0
	}
	var d algo.Decision
	if cost <= e.units {
		e.units -= cost
		d.Allowed = true
	}
	// Ask for more when the lease is below half its size, or cannot serve this call.
	if !e.pending && now >= e.wait && (2*e.units < e.chunk || !d.Allowed) {
		e.pending, e.want = true, cost
		s.enqueue(e)
	} else if e.pending && !d.Allowed {
		e.want = max(e.want, cost)
	}
	d.Remaining = e.units + e.left
	if e.expires > now {
		d.ResetAfter = e.expires - now
	}
	if !d.Allowed {
		switch {
		case now < e.wait && e.left == 0 && alg == ratelimit.FixedWindow && e.expires > now:
			d.RetryAfter = e.expires - now // nothing left until the window ends
		default:
			d.RetryAfter = max(s.rtt.Load(), int64(100*time.Microsecond))
		}
	}
	e.mu.Unlock()
	if !d.Allowed && s.down.Load() {
		return s.strict.guard.Answer(ctx, key, alg, limit, n, p, fmt.Errorf("redisstore: take %q: %w", key, errLeaseDown))
	}
	if d.Allowed {
		s.allowed.Add(1)
	}
	return d.Result(p), nil
}

// errLeaseDown is the cause of a policy answer: the lease could not serve the call and the
// last round trip to Redis failed.
var errLeaseDown = errors.New("lease exhausted while Redis is unavailable")

// entry returns the lease of (key, alg), creating it.
func (s *LeaseStore) entry(key string, alg ratelimit.Algorithm) *lease {
	k := leaseKey{key, alg}
	sh := &s.shards[maphash.String(s.seed, key)%leaseShards]
	sh.mu.RLock()
	e := sh.m[k]
	sh.mu.RUnlock()
	if e != nil {
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.m[k]; e == nil {
		e = &lease{k: k, rkey: s.strict.key(key, alg)}
		sh.m[k] = e
	}
	return e
}

func (s *LeaseStore) enqueue(e *lease) {
	s.pendMu.Lock()
	s.pending = append(s.pending, e)
	s.pendMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop is the store's goroutine: it sends the refills as they are asked for, batched per
// round trip, and sweeps idle keys every Interval. It exits when Close is called.
func (s *LeaseStore) loop() {
	defer close(s.done)
	tick := time.NewTicker(time.Duration(s.interval))
	defer tick.Stop()
	var batch []*lease
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-tick.C:
			s.sweep(s.run)
		}
		s.pendMu.Lock()
		batch, s.pending = s.pending, batch[:0]
		s.pendMu.Unlock()
		for b := batch; len(b) > 0; {
			n := min(len(b), maxRefill)
			s.refill(b[:n])
			b = b[n:]
		}
		clear(batch)
	}
}

// maxRefill is the most keys one refill round trip asks for: a round trip must finish
// within the Timeout, on a loaded machine too.
const maxRefill = 256

// grantReq is one key's part of a refill round trip.
type grantReq struct {
	e    *lease
	want uint64
	cmd  *redis.Cmd
}

// refill asks Redis for the leases of batch in one pipelined round trip.
func (s *LeaseStore) refill(batch []*lease) {
	reqs := make([]grantReq, 0, len(batch))
	for _, e := range batch {
		e.mu.Lock()
		if e.gone {
			e.pending = false
			e.mu.Unlock()
			continue
		}
		p := e.p
		if e.since > 0 {
			lasted := s.now() - e.since
			switch {
			case lasted < s.interval:
				e.chunk = min(2*e.chunk, s.maxChunk(p))
			case lasted > 4*s.interval:
				e.chunk = max(e.chunk/2, e.want, 1)
			}
		}
		var want uint64
		if e.units < e.chunk {
			want = e.chunk - e.units
		}
		want = min(max(want, e.want), p.Cap)
		if want == 0 {
			e.pending = false
			e.mu.Unlock()
			continue
		}
		args := []any{"evalsha", leaseGrant.hashArg, 1, e.rkey,
			strconv.FormatUint(p.Rate, 10), strconv.FormatUint(p.Period/1000, 10),
			strconv.FormatUint(p.Cap, 10), strconv.FormatUint(want, 10),
			strconv.FormatInt(fillMicros(p), 10), algCodes[e.k.alg]}
		e.mu.Unlock()
		reqs = append(reqs, grantReq{e: e, want: want, cmd: redis.NewCmd(context.Background(), args...)})
	}
	if len(reqs) == 0 {
		return
	}
	sent := s.now()
	cmds := make([]*redis.Cmd, len(reqs))
	for i := range reqs {
		cmds[i] = reqs[i].cmd
	}
	ran := false
	answer, err := s.strict.guard.Do(s.run, func(ctx context.Context) error {
		ran = true
		s.rounds.Add(1)
		s.scripts.Add(uint64(len(cmds)))
		return s.pipeline(ctx, leaseGrant, cmds)
	}, func(err error) error { return fmt.Errorf("redisstore: lease refill of %d keys: %w", len(reqs), err) })
	for i := range reqs {
		reqs[i].cmd = cmds[i] // pipeline replaces the commands it sent again by EVAL
	}
	now := s.now()
	if err == nil {
		s.down.Store(false)
		s.rtt.Store(now - sent)
	} else if answer {
		s.down.Store(true)
		s.strict.guard.Report(err)
	}
	for i := range reqs {
		s.apply(&reqs[i], sent, now, ran, err)
	}
}

// apply records the reply to one grant. A failed grant that was sent may have been applied
// by Redis: its units are lost to this window (never spent), which can only under-admit.
func (s *LeaseStore) apply(r *grantReq, sent, now int64, ran bool, failed error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending, e.want = false, 0
	var g grant
	err := failed
	if err == nil {
		g, err = decodeGrant(r.cmd)
	}
	if err != nil {
		if ran {
			s.lost.Add(r.want)
		}
		e.wait = now + s.interval
		if failed == nil {
			s.strict.guard.Report(fmt.Errorf("redisstore: lease refill %q: %w", e.k.key, err))
		}
		return
	}
	s.granted.Add(g.granted)
	// The grant ran after sent, so its window ends at most until after sent: a lease never
	// outlives its window, whatever the round trip took.
	expires := sent + g.until*1000
	if g.start != e.start || now >= e.expires {
		e.units, e.start, e.expires = 0, g.start, expires
	} else {
		e.expires = min(e.expires, expires)
	}
	e.units += g.granted
	e.left = g.left
	e.since = now
	if g.granted < r.want && g.left == 0 {
		// Nothing left: a fixed window has nothing until it ends; a sliding window counter
		// frees units as the previous window's weight decays.
		e.wait = now + s.interval
		if e.k.alg == ratelimit.FixedWindow {
			e.wait = e.expires
		}
	}
	if now >= e.expires {
		e.units = 0
	}
}

// grant is a decoded reply of the grant script.
type grant struct {
	granted, left uint64
	start, until  int64 // window start and µs until its end
}

// decodeGrant reads the reply of the grant script, checking every element.
func decodeGrant(cmd *redis.Cmd) (grant, error) {
	v, err := cmd.Result()
	if err != nil {
		return grant{}, err
	}
	x, err := decodeGoRedis(v, 4)
	if err != nil {
		return grant{}, err
	}
	if x[0] < 0 || x[1] < 0 || x[2] < 0 || x[3] <= 0 {
		return grant{}, fmt.Errorf("%w: %v", errReply, x)
	}
	return grant{granted: uint64(x[0]), left: uint64(x[1]), start: x[2], until: x[3]}, nil
}

// pipeline sends cmds, scripts of sc by EVALSHA, in one pipelined round trip. When the
// server answers NOSCRIPT (a restart, a failover: NOSCRIPT proves the script did not run),
// it loads sc on every primary and sends those commands again, by EVALSHA. Each command
// is marked not retryable, so go-redis never sends one twice. It returns an error when the
// round trip failed as a whole; each command holds its own reply or error.
func (s *LeaseStore) pipeline(ctx context.Context, sc *script, cmds []*redis.Cmd) error {
	send := func(cmds []*redis.Cmd) error {
		pipe := s.client.Pipeline()
		for _, c := range cmds {
			_ = pipe.Process(ctx, noRetryCmd{c})
		}
		_, err := pipe.Exec(ctx)
		var re redis.Error
		if err != nil && errors.As(err, &re) {
			return nil // a reply of one command, kept in it
		}
		return err
	}
	if err := send(cmds); err != nil {
		return err
	}
	var again []*redis.Cmd
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			cmds[i] = redis.NewCmd(ctx, c.Args()...)
			again = append(again, cmds[i])
		}
	}
	if len(again) == 0 {
		return nil
	}
	if err := s.loadScript(ctx, sc); err != nil {
		return err
	}
	return send(again)
}

// loadScript loads sc on the server, or on every primary of a Cluster.
func (s *LeaseStore) loadScript(ctx context.Context, sc *script) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.ScriptLoad(ctx, sc.src).Err()
		})
	}
	return s.client.ScriptLoad(ctx, sc.src).Err()
}

// release gives back the unspent units of leases, one script per key in one pipelined
// round trip, never retried: a release applied twice would free units still counted.
func (s *LeaseStore) release(ctx context.Context, ls []*lease) error {
	now := s.now()
	var cmds []*redis.Cmd
	var units []uint64
	for _, e := range ls {
		e.mu.Lock()
		u := e.units
		if now >= e.expires {
			u = 0
		}
		e.units = 0
		start := e.start
		e.mu.Unlock()
		if u == 0 {
			continue
		}
		cmds = append(cmds, redis.NewCmd(ctx, "evalsha", leaseRelease.hashArg, 1, e.rkey,
			algCodes[e.k.alg], strconv.FormatInt(start, 10), strconv.FormatUint(u, 10)))
		units = append(units, u)
	}
	if len(cmds) == 0 {
		return nil
	}
	ctx, cancel := s.strict.guard.Context(ctx)
	defer cancel()
	s.rounds.Add(1)
	s.scripts.Add(uint64(len(cmds)))
	if err := s.pipeline(ctx, leaseRelease, cmds); err != nil {
		for _, u := range units {
			s.lost.Add(u)
		}
		return fmt.Errorf("redisstore: lease release of %d keys: %w", len(cmds), err)
	}
	var first error
	for i, c := range cmds {
		v, err := c.Result()
		var back []int64
		if err == nil {
			back, err = decodeGoRedis(v, 1)
		}
		if err != nil || back[0] < 0 {
			s.lost.Add(units[i])
			if first == nil {
				first = fmt.Errorf("redisstore: lease release: %w", err)
			}
			continue
		}
		s.released.Add(uint64(back[0]))
		s.lost.Add(units[i] - min(units[i], uint64(back[0])))
	}
	return first
}

// sweep releases and drops the keys idle for IdleAfter, and drops without a round trip
// those whose lease has expired.
func (s *LeaseStore) sweep(ctx context.Context) {
	now := s.now()
	var idle []*lease
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			e.mu.Lock()
			if !e.pending && now-e.used >= s.idle {
				e.gone = true
				delete(sh.m, k)
				if e.units > 0 && now < e.expires {
					idle = append(idle, e)
				}
			}
			e.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	if len(idle) > 0 {
		if err := s.release(ctx, idle); err != nil {
			s.strict.guard.Report(err)
		}
	}
}

// Reset implements [ratelimit.Store]: it drops the key's local lease and deletes its state
// in Redis, as [Store.Reset] does. Other processes keep the leases they hold.
func (s *LeaseStore) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	if err := s.strict.Reset(ctx, key, alg); err != nil {
		return err
	}
	sh := &s.shards[maphash.String(s.seed, key)%leaseShards]
	sh.mu.Lock()
	if e := sh.m[leaseKey{key, alg}]; e != nil {
		e.mu.Lock()
		e.gone, e.units = true, 0
		e.mu.Unlock()
		delete(sh.m, leaseKey{key, alg})
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
			for k, e := range sh.m {
				all = append(all, e)
				delete(sh.m, k)
			}
			sh.mu.Unlock()
		}
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
}

// Stats returns the store's counters.
func (s *LeaseStore) Stats() LeaseStats {
	return LeaseStats{
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
