package sql

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on Linux whatever
// the kernel's own tick rate.
const userHZ = 100

// serverCPU reads the CPU time of the server whose postmaster is pid.
func serverCPU(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) { return processTreeCPU(pid) }
}

// processTreeCPU returns the CPU time, user and system, of process pid and its children:
// PostgreSQL's postmaster and its backends. Children that have exited count through the
// parent's cutime and cstime.
func processTreeCPU(pid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var ticks int64
	found := false
	for _, path := range stats {
		f, err := statFields(path)
		if err != nil {
			continue // the process has exited
		}
		self, _ := strconv.Atoi(f[0])
		parent, _ := strconv.Atoi(f[3])
		if self != pid && parent != pid {
			continue
		}
		found = found || self == pid
		for _, i := range []int{13, 14} { // utime, stime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
		if self == pid {
			for _, i := range []int{15, 16} { // cutime, cstime
				n, _ := strconv.ParseInt(f[i], 10, 64)
				ticks += n
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("no process %d", pid)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// statFields returns the fields of a /proc/<pid>/stat file, the command name (which may
// hold spaces) as one.
func statFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return nil, fmt.Errorf("%s: no command name", path)
	}
	f := append([]string{string(bytes.TrimSpace(b[:open])), string(b[open+1 : end])}, strings.Fields(string(b[end+1:]))...)
	if len(f) < 17 {
		return nil, fmt.Errorf("%s: %d fields", path, len(f))
	}
	return f, nil
}
