package httplimit_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
)

func contextWith(r *http.Request, key, value any) context.Context {
	return context.WithValue(r.Context(), key, value)
}

// pipeServer is a real http.Server reached by a real http.Transport over in-memory
// connections (net.Pipe), so that it runs inside a testing/synctest bubble, where
// loopback sockets would not let time advance.
type pipeServer struct {
	srv       *http.Server
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	transport *http.Transport
}

// startPipeServer serves h until the test ends; call it inside the bubble.
func startPipeServer(t *testing.T, h http.Handler) *pipeServer {
	s := &pipeServer{srv: &http.Server{Handler: h}, conns: make(chan net.Conn), done: make(chan struct{})}
	s.transport = &http.Transport{DialContext: s.dial}
	go s.srv.Serve(s)
	t.Cleanup(func() {
		s.srv.Close()
		s.transport.CloseIdleConnections()
	})
	return s
}

// URL is the base URL of the server; its host is arbitrary.
const pipeURL = "http://pipe.test"

func (s *pipeServer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case s.conns <- peerConn{server}:
		return client, nil
	case <-s.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *pipeServer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *pipeServer) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

func (s *pipeServer) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// peerConn gives the server side of a pipe a client address, as a TCP connection has.
type peerConn struct{ net.Conn }

func (peerConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4711} }
