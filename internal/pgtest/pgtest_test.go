package pgtest

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

func TestStartStop(t *testing.T) {
	s := Start(t, nil)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port))
	if err != nil {
		t.Fatalf("server not listening: %v", err)
	}
	c.Close()
	pid := s.PID()
	s.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("postmaster %d still running after Stop", pid)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.Port)); err != nil {
		t.Fatalf("not listening after a restart on the same port: %v", err)
	} else {
		c.Close()
	}
}
