package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit/internal/benchload"
)

// cpuTime returns the user+system CPU time a process has used so far, read
// from /proc/PID/stat ("self" for this process). ok is false where /proc is
// missing or the process is gone.
func cpuTime(pid string) (d time.Duration, ok bool) {
	st, ok := benchload.ReadProcStat(pid)
	return st.CPU, ok
}

// machineBusy returns the CPU time all cores of the machine have spent not
// idle, read from the first line of /proc/stat.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStat(string(b))
}

// parseProcStat sums the fields of the "cpu" line of /proc/stat except idle
// and iowait (the 4th and 5th). guest and guest_nice are already inside user
// and nice, so only the first eight fields count.
func parseProcStat(s string) (time.Duration, bool) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i == 3 || i == 4 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * benchload.ClockTick, true
}

// machinePID stands for the whole machine in a cpuMeter.
const machinePID = "machine"

func readCPU(pid string) (time.Duration, bool) {
	if pid == machinePID {
		return machineBusy()
	}
	return cpuTime(pid)
}

// cpuMeter samples the CPU time of a set of processes over an interval.
type cpuMeter struct {
	names []string
	pids  []string
	start []time.Duration
	ok    []bool
	t0    time.Time
}

func newCPUMeter(names, pids []string) *cpuMeter {
	return &cpuMeter{names: names, pids: pids}
}

func (m *cpuMeter) begin() {
	m.t0 = time.Now()
	m.start = make([]time.Duration, len(m.pids))
	m.ok = make([]bool, len(m.pids))
	for i, p := range m.pids {
		m.start[i], m.ok[i] = readCPU(p)
	}
}

// end returns, for each process (or the machine), the CPU it used since begin as a share of
// one core ("135%" is 1.35 cores), or "-" where it could not be read.
func (m *cpuMeter) end() []string {
	wall := time.Since(m.t0)
	out := make([]string, len(m.pids))
	for i, p := range m.pids {
		d, ok := readCPU(p)
		if !ok || !m.ok[i] || wall <= 0 {
			out[i] = "-"
			continue
		}
		out[i] = fmt.Sprintf("%.0f%%", 100*float64(d-m.start[i])/float64(wall))
	}
	return out
}

// waitQuiet waits until the whole machine has used less than below (a share
// of one core, 0.2 = 20 %) for three one-second samples in a row, or until
// maxWait has passed. It reports whether the machine went quiet and its last
// sample, or false and -1 where /proc/stat cannot be read.
func waitQuiet(maxWait time.Duration, below float64) (bool, float64) {
	deadline := time.Now().Add(maxWait)
	quiet := 0
	last := -1.0
	for {
		b0, ok0 := machineBusy()
		t0 := time.Now()
		time.Sleep(time.Second)
		b1, ok1 := machineBusy()
		if !ok0 || !ok1 {
			return false, -1
		}
		last = float64(b1-b0) / float64(time.Since(t0))
		if last < below {
			quiet++
		} else {
			quiet = 0
		}
		if quiet >= 3 {
			return true, last
		}
		if time.Now().After(deadline) {
			return false, last
		}
	}
}
