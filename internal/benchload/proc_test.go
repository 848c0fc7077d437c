package benchload

import (
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	line := "4242 (my (odd) proc) S 17 4242 4242 0 -1 4194560 1021 0 0 0 250 75 12 3 20 0 9 0 12345 1234567 890 18446744073709551615\n"
	st, ok := ParseProcStat(line)
	want := ProcStat{PID: 4242, PPID: 17, CPU: 325 * ClockTick, ChildrenCPU: 15 * ClockTick}
	if !ok || st != want {
		t.Fatalf("ParseProcStat = %+v, %v; want %+v", st, ok, want)
	}
	for _, bad := range []string{"garbage", "1 (x) S 1 2 3", "x (y) S 17 4242 4242 0 -1 4194560 1021 0 0 0 250 75 12 3 20"} {
		if _, ok := ParseProcStat(bad); ok {
			t.Errorf("ParseProcStat(%q) accepted", bad)
		}
	}
}

func TestProcessTreeCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	self, ok := ReadProcStat("self")
	if !ok || self.PID != os.Getpid() {
		t.Fatalf("ReadProcStat(self) = %+v, %v; want this process, %d", self, ok, os.Getpid())
	}
	d, err := ProcessTreeCPU(os.Getpid())
	if err != nil || d < self.CPU {
		t.Errorf("ProcessTreeCPU(self) = %v, %v; want at least its own %v", d, err, self.CPU)
	}
	if _, err := ProcessTreeCPU(-1); err == nil {
		t.Error("ProcessTreeCPU(-1) found a process")
	}
}
