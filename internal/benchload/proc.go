package benchload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ), which Linux fixes at
// 100 per second for user space.
const ClockTick = 10 * time.Millisecond

// ProcStat is what a benchmark reads of /proc/PID/stat: the process, its parent, the CPU
// time it has used (user and system) and that of its children that have exited and been
// waited for.
type ProcStat struct {
	PID, PPID        int
	CPU, ChildrenCPU time.Duration
}

// ParseProcStat parses the text of /proc/PID/stat. The command name, field 2, is in
// parentheses and may hold spaces, so fields are counted from the last ')'.
func ParseProcStat(s string) (ProcStat, bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return ProcStat{}, false
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3 (state), so field n is f[n-3]
	if len(f) < 15 {
		return ProcStat{}, false
	}
	var n [5]int64 // ppid, utime, stime, cutime, cstime: fields 4, 14, 15, 16, 17
	for i, field := range []int{4, 14, 15, 16, 17} {
		v, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			return ProcStat{}, false
		}
		n[i] = v
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return ProcStat{}, false
	}
	return ProcStat{PID: pid, PPID: int(n[0]), CPU: time.Duration(n[1]+n[2]) * ClockTick,
		ChildrenCPU: time.Duration(n[3]+n[4]) * ClockTick}, true
}

// ReadProcStat reads /proc/PID/stat, pid being a number or "self"; false where /proc is
// missing or the process is gone.
func ReadProcStat(pid string) (ProcStat, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return ProcStat{}, false
	}
	return ParseProcStat(string(b))
}

// ProcessTreeCPU returns the CPU time of process pid and of its children, running or
// exited (as PostgreSQL's postmaster and its backends): a server that forks.
func ProcessTreeCPU(pid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var total time.Duration
	found := false
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process has exited
		}
		st, ok := ParseProcStat(string(b))
		switch {
		case !ok:
			return 0, fmt.Errorf("%s: not a stat line", path)
		case st.PID == pid:
			total += st.CPU + st.ChildrenCPU
			found = true
		case st.PPID == pid:
			total += st.CPU
		}
	}
	if !found {
		return 0, errors.New("no process " + strconv.Itoa(pid) + " in /proc")
	}
	return total, nil
}
