package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is a raw HTTP/2 client connection to the gRPC listener, for sending what no
// well-behaved client sends. A reader goroutine answers SETTINGS and counts what the
// server sends back.
type h2conn struct {
	t               *testing.T
	conn            net.Conn
	mu              sync.Mutex // held to write a frame, so that frames never interleave
	bw              *bufio.Writer
	fr              *http2.Framer // writes only; the reader has its own
	refused, goaway atomic.Int64
	pingAck         chan [8]byte
	closed          chan struct{} // closed when the server closes the connection
	// answerPings makes the reader answer the server's keepalive pings.
	answerPings bool
}

// dialH2 opens a connection to addr and sends the client preface and SETTINGS.
func dialH2(t *testing.T, addr string, answerPings bool) *h2conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &h2conn{t: t, conn: conn, bw: bufio.NewWriterSize(conn, 64<<10), pingAck: make(chan [8]byte, 16), closed: make(chan struct{}), answerPings: answerPings}
	c.fr = http2.NewFramer(c.bw, nil)
	if _, err := io.WriteString(c.bw, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if !c.write(true, func(fr *http2.Framer) error { return fr.WriteSettings() }) {
		t.Fatal("the client preface could not be written")
	}
	go c.read()
	return c
}

func (c *h2conn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.bw.Flush(); err != nil {
		c.t.Errorf("write to the gRPC listener: %v", err)
	}
}

// write writes one frame with f, and flushes it when flush is set. It reports whether
// the write succeeded.
func (c *h2conn) write(flush bool, f func(*http2.Framer) error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := f(c.fr); err != nil {
		return false
	}
	return !flush || c.bw.Flush() == nil
}

// read consumes the server's frames until the connection ends.
func (c *h2conn) read() {
	defer close(c.closed)
	fr := http2.NewFramer(c.conn, bufio.NewReader(c.conn))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(true, (*http2.Framer).WriteSettingsAck)
			}
		case *http2.PingFrame:
			if f.IsAck() {
				c.pingAck <- f.Data
			} else if c.answerPings {
				c.write(true, func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
			}
		case *http2.RSTStreamFrame:
			if f.ErrCode == http2.ErrCodeRefusedStream {
				c.refused.Add(1)
			}
		case *http2.GoAwayFrame:
			c.goaway.Add(1)
		}
	}
}

// openStreams sends n HEADERS frames of ShouldRateLimit calls, each opening a stream and
// never sending its request message.
func (c *h2conn) openStreams(first uint32, n int) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "ratelimitd"},
		{":path", "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hb.Bytes()
	for i := range n {
		if !c.write(false, func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: first + 2*uint32(i), BlockFragment: block, EndHeaders: true})
		}) {
			c.t.Fatalf("stream %d: the write failed", first+2*uint32(i))
		}
	}
	c.flush()
}

// sync sends a PING and waits for its ACK: the server has then read every frame sent
// before it.
func (c *h2conn) sync(timeout time.Duration) {
	c.t.Helper()
	if !c.write(true, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{'s', 'y', 'n', 'c'}) }) {
		c.t.Fatal("the PING could not be written")
	}
	select {
	case <-c.pingAck:
	case <-c.closed:
		c.t.Fatal("the server closed the connection before answering the PING")
	case <-time.After(timeout):
		c.t.Fatalf("no PING ACK within %v", timeout)
	}
}

// waitClosed reports whether the server closes the connection within d.
func (c *h2conn) waitClosed(d time.Duration) bool {
	select {
	case <-c.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// rss returns the resident set size of this process, in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmRSS missing from /proc/self/status")
	return 0
}

// TestGRPCStreamFlood opens 100,000 streams on one connection without sending a request
// message on any: the server holds at most its stream limit, refuses the rest, and its
// goroutines and memory stay bounded.
func TestGRPCStreamFlood(t *testing.T) {
	const streams = 100_000
	s := start(t, nil)
	rss0, g0 := rss(t), runtime.NumGoroutine()
	c := dialH2(t, s.grpc, true)
	for sent := 0; sent < streams; sent += 10_000 {
		c.openStreams(1+2*uint32(sent), 10_000)
	}
	c.sync(30 * time.Second)
	goroutines, mem := runtime.NumGoroutine(), rss(t)
	t.Logf("after %d streams on one connection: %d goroutines (%d before), RSS %d MB (%d MB before), %d refused",
		streams, goroutines, g0, mem>>20, rss0>>20, c.refused.Load())
	if goroutines > 2000 {
		t.Errorf("%d goroutines after %d streams on one connection, want at most 2,000", goroutines, streams)
	}
	if mem > 200<<20 {
		t.Errorf("RSS %d MB after %d streams on one connection, want at most 200 MB", mem>>20, streams)
	}
	if got, want := c.refused.Load(), int64(streams-100); got < want {
		t.Errorf("%d streams refused, want at least %d (all beyond the default limit of 100)", got, want)
	}
	// The service still answers on another connection.
	s.should(t, "example", exampleDescriptor)
}

// exampleDescriptor is unlimited in the built-in example rules.
var exampleDescriptor = &rlv3.RateLimitDescriptor{Entries: entries("caller", "internal")}

// TestGRPCConnectionCap: connections beyond -grpc-max-connections are closed at once and
// counted; closing one makes room for the next.
func TestGRPCConnectionCap(t *testing.T) {
	s := start(t, nil, "-grpc-max-connections", "3")
	s.conn.Close() // the helper's own client would take a slot once it connects
	var held []*h2conn
	for range 3 {
		c := dialH2(t, s.grpc, true)
		c.sync(5 * time.Second)
		held = append(held, c)
	}
	over := dialH2(t, s.grpc, true)
	if !over.waitClosed(5 * time.Second) {
		t.Fatal("a 4th connection with -grpc-max-connections 3 stayed open")
	}
	held[0].conn.Close()
	var next *h2conn
	deadline := time.Now().Add(5 * time.Second)
	for next == nil || next.waitClosed(50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no connection accepted after one of the 3 closed")
		}
		next = dialH2(t, s.grpc, true)
	}
	next.sync(5 * time.Second)
	_, body := get(t, "http://"+s.http+"/metrics")
	for _, want := range []string{"ratelimitd_grpc_connections 3", "ratelimitd_grpc_connections_rejected_total "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "ratelimitd_grpc_connections_rejected_total 0") {
		t.Error("ratelimitd_grpc_connections_rejected_total is 0 after a rejected connection")
	}
}

// TestGRPCIdleConnectionsClose: a connection without a call is sent GOAWAY and closed
// after -grpc-idle-timeout, while one whose client does not answer pings is closed after
// -grpc-keepalive-time plus -grpc-keepalive-timeout.
func TestGRPCIdleConnectionsClose(t *testing.T) {
	s := start(t, nil, "-grpc-idle-timeout", "300ms", "-grpc-keepalive-time", "1h")
	idle := dialH2(t, s.grpc, true)
	if !idle.waitClosed(10 * time.Second) {
		t.Fatal("an idle connection stayed open 10s with -grpc-idle-timeout 300ms")
	}
	if idle.goaway.Load() == 0 {
		t.Error("the idle connection was closed without GOAWAY")
	}

	s = start(t, nil, "-grpc-keepalive-time", "1s", "-grpc-keepalive-timeout", "200ms")
	silent := dialH2(t, s.grpc, false)
	silent.openStreams(1, 1) // a call in flight: not idle
	if !silent.waitClosed(10 * time.Second) {
		t.Fatal("a connection that answers no ping stayed open 10s with keepalive 1s + 200ms")
	}
	alive := dialH2(t, s.grpc, true)
	alive.openStreams(1, 1)
	if alive.waitClosed(2 * time.Second) {
		t.Error("a connection that answers pings was closed")
	}
}

// TestGRPCPingFlood: a client pinging more often than -grpc-keepalive-min-time is sent
// GOAWAY (too_many_pings) and disconnected.
func TestGRPCPingFlood(t *testing.T) {
	s := start(t, nil)
	c := dialH2(t, s.grpc, true)
	for i := range 10 {
		if !c.write(true, func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{byte(i)}) }) {
			break
		}
	}
	if !c.waitClosed(5 * time.Second) {
		t.Fatal("a client sending 10 pings at once stayed connected")
	}
	if c.goaway.Load() == 0 {
		t.Error("the pinging client was disconnected without GOAWAY")
	}
}
