// Package redistest starts real Redis servers for tests: a standalone server, a Cluster of
// three primaries and three replicas, and a Sentinel group. Tests use the server at
// REDIS_ADDR when it is set ([Addr]); otherwise they start their own redis-server from
// PATH on free loopback ports, and stop it by its pid when the test ends.
//
// Without redis-server the tests are skipped with a message saying so, unless
// RATELIMIT_REQUIRE_REDIS=1, which turns the skip into a failure (CI sets it).
//
// Importing the package silences go-redis's own logger: tests stop and kill servers on
// purpose, and the client's lines about refused connections would bury the tests' output.
// What fails reaches the tests as errors.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

func init() { logging.Disable() }

// RequireEnv is the variable that turns a missing redis-server into a test failure.
const RequireEnv = "RATELIMIT_REQUIRE_REDIS"

// AddrEnv names an existing standalone server for the tests that need no server of their own.
const AddrEnv = "REDIS_ADDR"

// Binary returns the path of redis-server, or skips t (fails it when RequireEnv is 1).
func Binary(t testing.TB) string {
	t.Helper()
	path, err := lookServer()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%v (%s=1)", err, RequireEnv)
		}
		t.Skip(err)
	}
	return path
}

// lookServer returns the path of redis-server, or an error saying how to get one.
func lookServer() (string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found in PATH: install Redis (Debian: apt-get install redis-server) or set " + AddrEnv)
	}
	return path, nil
}

func cliBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-cli")
	if err != nil {
		msg := "redis-cli not found in PATH: it creates the test Cluster (Debian: apt-get install redis-tools)"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s (%s=1)", msg, RequireEnv)
		}
		t.Skip(msg)
	}
	return path
}

// Addr returns the address of a standalone server: REDIS_ADDR when set, shared with other
// tests (use a distinct key prefix), or else a server of the test's own.
func Addr(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(AddrEnv); addr != "" {
		return addr
	}
	return Start(t).Addr()
}

// Server is a redis-server process started by a test. Its methods are safe for
// concurrent use.
type Server struct {
	bin  string
	dir  string
	head []string // arguments before the options (a config file)
	args []string // options, without --port

	mu   sync.Mutex
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been reaped
}

// Start starts a standalone redis-server on a free loopback port with persistence off,
// plus extra arguments, and stops it when t ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := newServer(Binary(t), t.TempDir(), extra)
	t.Cleanup(s.Stop)
	if err := s.start(0); err != nil {
		t.Fatal(err)
	}
	return s
}

func newServer(bin, dir string, extra []string) *Server {
	args := []string{
		"--bind", "127.0.0.1", "--protected-mode", "no", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
	}
	return &Server{bin: bin, dir: dir, args: append(args, extra...)}
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the server's port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Dir returns the server's working directory.
func (s *Server) Dir() string { return s.dir }

// start runs the server on port, or on a free port when port is 0, and waits until it
// answers PING. With port 0 a port taken meanwhile by someone else is retried.
func (s *Server) start(port int) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		p := port
		if p == 0 {
			if p, err = FreePort(); err != nil {
				return err
			}
		}
		if err = s.startOn(p, s.args); err == nil {
			return nil
		}
		if port == 0 && !errors.Is(err, errPortTaken) {
			return err
		}
		if port != 0 {
			// Our own port may linger briefly after a kill: wait and retry.
			time.Sleep(50 * time.Millisecond)
		}
	}
	return err
}

var errPortTaken = errors.New("port taken")

func (s *Server) startOn(port int, args []string) error {
	args = append(append(append([]string{}, s.head...), args...), "--port", strconv.Itoa(port))
	cmd := exec.Command(s.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			log := s.logTail()
			if strings.Contains(log+out.String(), "Address already in use") {
				return fmt.Errorf("redistest: %s: %w", addr, errPortTaken)
			}
			return fmt.Errorf("redistest: redis-server on %s exited: %s%s", addr, out.String(), log)
		default:
		}
		if ping(addr) {
			s.mu.Lock()
			s.port, s.cmd, s.done = port, cmd, done
			s.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redistest: redis-server on %s did not answer PING within 10s: %s", addr, s.logTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ping reports whether a server answers PING at addr.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// signal sends sig to the server, if running, and waits until it has exited and been reaped.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Stop stops the server (SIGTERM) and waits for it to exit. It is idempotent.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL, as a crash would, and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Pause stops the server's process (SIGSTOP) without closing its sockets, as a hung
// server; Resume continues it.
func (s *Server) Pause() { s.sendOnly(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.sendOnly(syscall.SIGCONT) }

func (s *Server) sendOnly(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port after Stop or Kill, with the same
// arguments and directory.
func (s *Server) Restart() error {
	s.mu.Lock()
	running, port := s.cmd != nil, s.port
	s.mu.Unlock()
	if running {
		return errors.New("redistest: restart of a running server")
	}
	return s.start(port)
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls cond every 10ms until it returns nil or timeout passes, and returns its
// last error.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func info(ctx context.Context, addr, section string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	return c.Info(ctx, section).Result()
}
