package topkeys_test

import (
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/topkeys"
)

// benchKeys returns n keys drawn from a Zipf distribution over 1M distinct keys, so
// that the collector both updates tracked keys and evicts.
func benchKeys(n int) []string {
	rng := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(rng, 1.1, 1, 1_000_000-1)
	ks := make([]string, n)
	for i := range ks {
		ks[i] = "client-" + strconv.FormatUint(z.Uint64(), 10)
	}
	return ks
}

func BenchmarkObserve(b *testing.B) {
	ks := benchKeys(1 << 16)
	c := topkeys.New(nil)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	i := 0
	for b.Loop() {
		c.Observe(ratelimit.Event{Rule: "r", Key: ks[i&(len(ks)-1)], Outcome: ratelimit.Outcome(1 + i&1)})
		i++
	}
	reportCPU(b, cpu0)
}

func BenchmarkObserveParallel(b *testing.B) {
	ks := benchKeys(1 << 16)
	c := topkeys.New(nil)
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(ks))
		for pb.Next() {
			c.Observe(ratelimit.Event{Rule: "r", Key: ks[i&(len(ks)-1)], Outcome: ratelimit.Outcome(1 + i&1)})
			i++
		}
	})
	reportCPU(b, cpu0)
}

func BenchmarkTop(b *testing.B) {
	ks := benchKeys(1 << 16)
	c := topkeys.New(nil)
	for i, k := range ks {
		c.Observe(ratelimit.Event{Key: k, Outcome: ratelimit.Outcome(1 + i&1)})
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		c.Top(10)
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the CPU time this process used per operation since cpu0: steadier
// than ns/op when other processes share the machine.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
