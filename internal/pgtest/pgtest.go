// Package pgtest starts PostgreSQL servers for tests: initdb and pg_ctl on a temporary
// directory and a free loopback port, stopped by the postmaster's pid at cleanup. It finds
// the binaries in /usr/lib/postgresql/*/bin or on PATH. PostgreSQL refuses to run as root;
// when the tests do, the server runs as the "postgres" user through runuser. Tests skip
// with a message when no server can be started, unless CI=true or
// RATELIMIT_REQUIRE_POSTGRES is set, where they fail.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a PostgreSQL server a test started.
type Server struct {
	Port    int
	dir     string // owned by the server's user; holds data/ and the log
	bin     string
	runAs   string // "" or the user the server runs as
	durable bool
	pid     int
}

// Options configure Start.
type Options struct {
	// Durable keeps fsync and synchronous_commit on, for benchmarks of durable writes.
	// By default the server trades durability against an operating system crash for speed,
	// which no test depends on: a killed or restarted server keeps what it committed.
	Durable bool
}

// Required reports whether a missing PostgreSQL fails the test rather than skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("RATELIMIT_REQUIRE_POSTGRES") != ""
}

// Start starts a fresh server for t, stopped at t's cleanup.
func Start(t testing.TB, opts *Options) *Server {
	t.Helper()
	bin := findBin()
	if bin == "" {
		msg := "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH): apt-get install postgresql"
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{bin: bin, durable: opts != nil && opts.Durable}
	if os.Geteuid() == 0 {
		s.runAs = "postgres"
	}
	if err := s.init(); err != nil {
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
		if Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() {
		s.Stop()
		os.RemoveAll(s.dir)
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func findBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if s.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (s *Server) init() error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return err
	}
	s.dir = dir
	if s.runAs != "" {
		u, err := user.Lookup(s.runAs)
		if err != nil {
			return fmt.Errorf("pgtest: running as root and no %q user to run PostgreSQL as: %w", s.runAs, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	cmd := s.command("initdb", "-D", s.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// URL returns the server's connection URL, for database postgres as user postgres.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// Start starts the server: on a new free port the first time, on the same one after Stop.
func (s *Server) Start() error {
	if s.Port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	o := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c max_connections=200 -c shared_buffers=64MB", s.Port, s.dir)
	if !s.durable {
		o += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	cmd := s.command("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "-o", o, "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	pidFile, err := os.ReadFile(filepath.Join(s.data(), "postmaster.pid"))
	if err != nil {
		return err
	}
	first, _, _ := bytes.Cut(pidFile, []byte("\n"))
	if s.pid, err = strconv.Atoi(strings.TrimSpace(string(first))); err != nil {
		return fmt.Errorf("pgtest: postmaster.pid: %w", err)
	}
	return nil
}

// Stop stops the server with a fast shutdown (SIGINT to the postmaster: sessions are
// ended, committed work kept) and waits for it to exit.
func (s *Server) Stop() {
	if s.pid == 0 {
		return
	}
	pid := s.pid
	s.pid = 0
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
}

// PID returns the postmaster's process id, 0 while stopped.
func (s *Server) PID() int { return s.pid }
