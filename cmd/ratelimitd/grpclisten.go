package main

import (
	"errors"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// grpcLimits bound what clients of the gRPC listener can hold: calls per connection,
// connections, and how long an idle or silent connection lives. Each is a flag.
//
// A call whose client sent its headers and never its message holds a goroutine and about
// 11 KB until its connection ends, and a connection about 120 KB (four goroutines and its
// buffers), so the listener holds at most maxConns × (120 KB + maxStreams × 11 KB): about
// 1.2 GB at the defaults. The defaults follow Envoy's advice for an edge listener (100
// streams per connection) and leave room for a thousand Envoy workers.
type grpcLimits struct {
	maxStreams  int           // concurrent streams per connection
	maxConns    int           // connections open at once
	idle        time.Duration // a connection without a stream this long is closed; 0: never
	pingAfter   time.Duration // a connection silent this long is pinged; 0: never
	pingTimeout time.Duration // and closed if still silent this long after the ping
	minPing     time.Duration // clients pinging more often than this are disconnected
}

// never is gRPC's "infinity" for keepalive durations.
const never = time.Duration(math.MaxInt64)

// serverOptions returns the gRPC server options that apply l.
func (l grpcLimits) serverOptions() ([]grpc.ServerOption, error) {
	if l.pingTimeout <= 0 {
		return nil, errors.New("grpc keepalive timeout: want a positive duration")
	}
	kp := keepalive.ServerParameters{MaxConnectionIdle: l.idle, Time: l.pingAfter, Timeout: l.pingTimeout}
	if kp.MaxConnectionIdle == 0 {
		kp.MaxConnectionIdle = never
	}
	if kp.Time == 0 {
		kp.Time = never
	}
	// A zero MinTime is gRPC's default of 5 minutes; a minimum of 0 means any rate.
	minPing := max(l.minPing, time.Nanosecond)
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(streamWorkers()),
		grpc.MaxConcurrentStreams(uint32(min(int64(l.maxStreams), math.MaxUint32))),
		grpc.KeepaliveParams(kp),
		// Pings without a call are allowed, as Envoy sends them on idle connections when
		// configured to; they do not keep a connection from counting as idle.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minPing, PermitWithoutStream: true}),
	}, nil
}

// streamWorkers is the number of goroutines that serve gRPC streams: reused, their stacks
// stay grown, where a goroutine per call grows a new one each time. A call finding them
// all busy gets a goroutine of its own, so a slow store cannot queue calls behind them.
func streamWorkers() uint32 {
	return uint32(4 * runtime.GOMAXPROCS(0))
}

// capListener accepts at most cap(slots) connections at once. A connection beyond them is
// closed as soon as it is accepted, so that the client learns at once and retries, rather
// than waiting unanswered in the listen queue.
type capListener struct {
	net.Listener
	slots    chan struct{}
	rejected atomic.Uint64
}

func newCapListener(ln net.Listener, n int) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, n)}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			c.Close()
			l.rejected.Add(1)
		}
	}
}

// open returns the number of connections open now.
func (l *capListener) open() int { return len(l.slots) }

// slotConn gives its listener slot back when closed.
type slotConn struct {
	net.Conn
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
