package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

func (s *LeaseStore) enqueue(e *lease) {
	s.pendMu.Lock()
	s.pending = append(s.pending, e)
	s.pendMu.Unlock()
	s.signal()
}

// signal wakes the store's goroutine.
func (s *LeaseStore) signal() {
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
		evicted := s.evicted
		s.evicted = nil
		s.pendMu.Unlock()
		if len(evicted) > 0 {
			if err := s.release(s.run, evicted); err != nil {
				s.strict.guard.Report(err)
			}
		}
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

// refill asks Redis for the leases of batch in one pipelined round trip.
func (s *LeaseStore) refill(batch []*lease) {
	leases := make([]*lease, 0, len(batch))
	wants := make([]uint64, 0, len(batch))
	calls := make([]leaseCall, 0, len(batch))
	for _, e := range batch {
		if want, args := s.grantArgs(e); want > 0 {
			leases, wants = append(leases, e), append(wants, want)
			calls = append(calls, leaseCall{key: e.rkey, args: args, want: 4})
		}
	}
	if len(calls) == 0 {
		return
	}
	sent := s.now()
	ran := false
	answer, err := s.strict.guard.Do(s.run, func(ctx context.Context) error {
		ran = true
		s.rounds.Add(1)
		s.scripts.Add(uint64(len(calls)))
		return s.conn.evalAll(ctx, leaseGrant, calls)
	}, func(err error) error { return fmt.Errorf("redisstore: lease refill of %d keys: %w", len(calls), err) })
	now := s.now()
	if err == nil {
		s.down.Store(false)
		s.rtt.Store(now - sent)
	} else if answer {
		s.down.Store(true)
		s.strict.guard.Report(err)
	}
	for i, e := range leases {
		s.apply(e, wants[i], &calls[i], sent, now, ran, err)
	}
}

// grantArgs adapts the lease size of e to how long its last lease lasted and returns the
// units its refill asks for, with the grant script's arguments; 0 when it needs none (the
// lease was dropped, or holds enough), and then e is no longer pending.
func (s *LeaseStore) grantArgs(e *lease) (uint64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	want := uint64(0)
	if !e.gone {
		want = e.resize(s.now(), s.interval, s.maxChunk(e.p))
	}
	if want == 0 {
		e.pending = false
		return 0, nil
	}
	p := e.p
	return want, []string{strconv.FormatUint(p.Rate, 10), strconv.FormatUint(p.Period/1000, 10),
		strconv.FormatUint(p.Cap, 10), strconv.FormatUint(want, 10),
		strconv.FormatInt(fillMicros(p), 10), algCodes[e.k.alg]}
}

// apply records the reply to one grant of want units. A failed grant that was sent may
// have been applied by Redis: its units are lost to this window (never spent), which can
// only under-admit.
func (s *LeaseStore) apply(e *lease, want uint64, c *leaseCall, sent, now int64, ran bool, failed error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.first != nil {
		close(e.first) // a first decision waiting decides again
		e.first = nil
	}
	var g grant
	err := failed
	if err == nil {
		g, err = decodeGrant(c)
	}
	if err != nil {
		if ran {
			s.lost.Add(want)
		}
		e.failed(now, s.interval)
		if failed == nil {
			s.strict.guard.Report(fmt.Errorf("redisstore: lease refill %q: %w", e.k.key, err))
		}
		return
	}
	s.granted.Add(g.granted)
	e.record(g, want, sent, now, s.interval)
	if e.gone && e.unspent(now) > 0 {
		// Evicted while the grant was on its way: give its units back with the evicted.
		s.pendMu.Lock()
		s.evicted = append(s.evicted, e)
		s.pendMu.Unlock()
		s.signal()
	}
}

// grant is a decoded reply of the grant script.
type grant struct {
	granted, left uint64
	start, until  int64 // window start and µs until its end
}

// decodeGrant reads the reply of the grant script, checking every element.
func decodeGrant(c *leaseCall) (grant, error) {
	if c.err != nil {
		return grant{}, c.err
	}
	x := c.vals
	if x[0] < 0 || x[1] < 0 || x[2] < 0 || x[3] <= 0 {
		return grant{}, fmt.Errorf("%w: %v", errReply, x)
	}
	return grant{granted: uint64(x[0]), left: uint64(x[1]), start: x[2], until: x[3]}, nil
}

// release gives back the unspent units of leases, one script per key in one pipelined
// round trip, never retried: a release applied twice would free units still counted.
func (s *LeaseStore) release(ctx context.Context, ls []*lease) error {
	now := s.now()
	var calls []leaseCall
	var units []uint64
	for _, e := range ls {
		e.mu.Lock()
		u := e.unspent(now)
		e.units = 0
		start := e.start
		e.mu.Unlock()
		if u == 0 {
			continue
		}
		calls = append(calls, leaseCall{key: e.rkey, want: 1,
			args: []string{algCodes[e.k.alg], strconv.FormatInt(start, 10), strconv.FormatUint(u, 10)}})
		units = append(units, u)
	}
	if len(calls) == 0 {
		return nil
	}
	ctx, cancel := s.strict.guard.Context(ctx)
	defer cancel()
	s.rounds.Add(1)
	s.scripts.Add(uint64(len(calls)))
	if err := s.conn.evalAll(ctx, leaseRelease, calls); err != nil {
		for _, u := range units {
			s.lost.Add(u)
		}
		return fmt.Errorf("redisstore: lease release of %d keys: %w", len(calls), err)
	}
	var first error
	for i, c := range calls {
		err := c.err
		if err == nil && c.vals[0] < 0 {
			err = fmt.Errorf("%w: %v", errReply, c.vals)
		}
		if err != nil {
			s.lost.Add(units[i])
			if first == nil {
				first = fmt.Errorf("redisstore: lease release: %w", err)
			}
			continue
		}
		back := uint64(c.vals[0])
		s.released.Add(back)
		s.lost.Add(units[i] - min(units[i], back))
	}
	return first
}

// sweep releases and drops the keys idle for IdleAfter, and drops without a round trip
// those whose lease has expired.
func (s *LeaseStore) sweep(ctx context.Context) {
	now := s.now()
	var idle, chain []*lease
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		chain = chain[:0]
		for _, head := range sh.m {
			for e := head; e != nil; e = e.next {
				chain = append(chain, e)
			}
		}
		for _, e := range chain {
			e.mu.Lock()
			if !e.pending && now-e.used >= s.idle {
				s.drop(sh, e)
				if e.unspent(now) > 0 {
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
