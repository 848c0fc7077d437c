package concurrency

import (
	"context"
	"time"
)

// waiter is a caller in the queue.
type waiter struct {
	ch      chan struct{} // receives one value when granted
	p       *Partition
	granted bool // guarded by Limiter.mu
}

// wait queues the caller, when the options allow, until a slot is handed to it.
func (l *Limiter) wait(ctx context.Context, p *Partition) (Token, error) {
	if l.opts.MaxQueue == 0 {
		l.rejected.Add(1)
		return Token{reason: LimitReached}, nil
	}
	l.mu.Lock()
	if len(l.queue) >= l.opts.MaxQueue {
		l.mu.Unlock()
		l.rejected.Add(1)
		return Token{reason: QueueFull}, nil
	}
	w := &waiter{ch: make(chan struct{}, 1), p: p}
	l.queue = append(l.queue, w)
	l.waiting.Add(1)
	l.dispatchLocked() // a slot may have freed since admit failed
	l.mu.Unlock()

	var timeout <-chan time.Time
	if l.opts.MaxWait > 0 {
		t := time.NewTimer(l.opts.MaxWait)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-w.ch:
		return l.granted(p), nil
	case <-ctx.Done():
		err = context.Cause(ctx)
	case <-timeout:
	}
	l.mu.Lock()
	if w.granted {
		// The slot was handed over as the caller gave up: take it anyway when only
		// MaxWait ran out, give it back when the context ended.
		l.mu.Unlock()
		<-w.ch
		t := l.granted(p)
		if err == nil {
			return t, nil
		}
		t.Release(Ignored)
		return Token{reason: QueueTimeout}, err
	}
	for i, q := range l.queue {
		if q == w {
			copy(l.queue[i:], l.queue[i+1:])
			l.queue[len(l.queue)-1] = nil
			l.queue = l.queue[:len(l.queue)-1]
			break
		}
	}
	l.waiting.Add(-1)
	l.mu.Unlock()
	l.rejected.Add(1)
	return Token{reason: QueueTimeout}, err
}

func (l *Limiter) granted(p *Partition) Token {
	t := Token{l: l, p: p, start: l.now(), reason: Admitted}
	l.noteInFlight(l.inflight.Load())
	return t
}

// dispatch hands free slots to queued callers.
func (l *Limiter) dispatch() {
	l.mu.Lock()
	l.dispatchLocked()
	l.mu.Unlock()
}

// dispatchLocked hands free slots to queued callers, newest first. l.mu is held.
func (l *Limiter) dispatchLocked() {
	for i := len(l.queue) - 1; i >= 0; i-- {
		w := l.queue[i]
		if _, ok := l.admit(w.p); !ok {
			if len(l.partList) == 0 {
				return // no partition share can let an older waiter in
			}
			continue
		}
		copy(l.queue[i:], l.queue[i+1:])
		l.queue[len(l.queue)-1] = nil
		l.queue = l.queue[:len(l.queue)-1]
		l.waiting.Add(-1)
		w.granted = true
		w.ch <- struct{}{}
	}
}
