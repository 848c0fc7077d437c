package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Connection attempts of [DialRueidis] start this far apart and double up to the maximum.
const (
	dialRetryMin = 100 * time.Millisecond
	dialRetryMax = 2 * time.Second
)

// DialRueidis returns a Store on a rueidis client that it creates from opt in the
// background, so that it returns at once whether Redis answers or not: a service can
// start, and answer by [Options.Policy], while Redis is down or hung. Until the client has
// connected, calls fail as calls to an unreachable Redis do (they are answered by Policy
// and count towards the breaker) and [Options.OnError] receives each failed connection
// attempt; attempts start 100ms apart and back off to one every 2s. Once connected, the
// rueidis client reconnects by itself.
//
// The Store owns the client: [Store.Close] stops the attempts and closes it. The one
// goroutine making the attempts exits when the client connects, or after Close once the
// attempt under way (bounded by opt's dial timeout) ends.
func DialRueidis(opt rueidis.ClientOption, opts *Options) *Store {
	d := &dialedBackend{stop: make(chan struct{}), dialed: make(chan struct{})}
	s := build(d, opts)
	go d.connect(opt, s.guard.Report)
	return s
}

// dialedBackend is a rueidis backend whose client is created after the Store.
type dialedBackend struct {
	client  atomic.Pointer[rueidisBackend] // nil until connected
	lastErr atomic.Pointer[error]          // of the last failed attempt

	dialed chan struct{} // closed when the first attempt ends

	mu     sync.Mutex // orders the client's publication and close
	closed bool
	stop   chan struct{} // closed by close
}

// closedChan is the Dialed channel of a Store whose client the caller made.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Dialed returns a channel that is closed when the first connection attempt of a Store
// from [DialRueidis] has ended, connected or not ([Store.Ping] tells which): a service
// may wait for it, within a bound of its own, so that its first calls do not find the
// store unconnected while Redis is up. For a Store from [New] or [NewRueidis] the channel
// is closed already.
func (s *Store) Dialed() <-chan struct{} {
	if d, ok := s.backend.(*dialedBackend); ok {
		return d.dialed
	}
	return closedChan
}

// errNotConnected is the error of a call before the client has connected.
var errNotConnected = errors.New("not connected yet")

func (d *dialedBackend) unconnected() error {
	if p := d.lastErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", errNotConnected, *p)
	}
	return errNotConnected
}

func (d *dialedBackend) eval(ctx context.Context, sc *script, keys, args []string, boxed []any, want int) ([]int64, error) {
	if b := d.client.Load(); b != nil {
		return b.eval(ctx, sc, keys, args, boxed, want)
	}
	return nil, d.unconnected()
}

func (d *dialedBackend) del(ctx context.Context, key string) error {
	if b := d.client.Load(); b != nil {
		return b.del(ctx, key)
	}
	return d.unconnected()
}

func (d *dialedBackend) ping(ctx context.Context) error {
	if b := d.client.Load(); b != nil {
		return b.ping(ctx)
	}
	return d.unconnected()
}

// connect creates the client, retrying until it connects or close is called.
func (d *dialedBackend) connect(opt rueidis.ClientOption, report func(error)) {
	wait := dialRetryMin
	for attempt := 0; ; attempt++ {
		c, err := rueidis.NewClient(opt)
		if err == nil {
			d.publish(c)
		} else {
			d.lastErr.Store(&err)
			report(fmt.Errorf("redisstore: connect: %w", err))
		}
		if attempt == 0 {
			close(d.dialed)
		}
		if err == nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-d.stop:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, dialRetryMax)
	}
}

// publish makes c the client, or closes it if the store is closed.
func (d *dialedBackend) publish(c rueidis.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		c.Close()
		return
	}
	d.client.Store(&rueidisBackend{c: c})
}

func (d *dialedBackend) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	close(d.stop)
	if b := d.client.Load(); b != nil {
		b.c.Close()
	}
}
