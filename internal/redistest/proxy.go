package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a server that can delay its replies, as a slow network
// or an overloaded server would: requests reach the server at once, and replies come back
// late. It is closed when the test ends.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	delays []*atomic.Int64 // per client connection: nanoseconds added to each reply chunk
	wg     sync.WaitGroup
}

// StartProxy starts a Proxy to target on a free loopback port.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// DelayOpenConns delays every later reply on the connections open now by d (0 forwards
// them at once again); connections opened later are not delayed. A client that times out
// and retries on a new connection thus gets its retry answered at once, while the server
// has run the first attempt too.
func (p *Proxy) DelayOpenConns(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, dl := range p.delays {
		dl.Store(int64(d))
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		delay := new(atomic.Int64)
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.delays = append(p.delays, delay)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); s.Close() }()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					if d := delay.Load(); d > 0 {
						time.Sleep(time.Duration(d))
					}
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
