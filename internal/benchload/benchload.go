// Package benchload runs the benchmarks of the stores behind a server (Redis, PostgreSQL):
// a fixed number of goroutines share b.N calls, and the run reports throughput, latency
// percentiles and the CPU time per call of the client and of the server. On a machine
// shared with other work the CPU times vary far less than throughput, and the server's
// bounds the throughput of any client once it is saturated.
package benchload

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server reads the CPU time, user and system, a server has used: Name names its metric,
// "<name>-cpu-µs/op". A nil CPU reports no server metric.
type Server struct {
	Name string
	CPU  func() (time.Duration, error)
}

// Parallel runs take from conc goroutines for b.N calls in all, take's i counting from 1,
// and reports ops/s, the 50th, 99th and 99.9th latency percentiles in microseconds, and
// the CPU time per call of this process and of srv.
func Parallel(b *testing.B, conc int, srv Server, take func(ctx context.Context, i int) error) {
	ctx := context.Background()
	lat := make([][]time.Duration, conc)
	var next atomic.Int64
	cpu := srv.CPU
	if cpu == nil {
		cpu = func() (time.Duration, error) { return 0, nil }
	}
	srvStart, err := cpu()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cliStart, _ := CPUTime()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/conc+1)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				t0 := time.Now()
				if err := take(ctx, int(i)); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[g] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cliEnd, cliOK := CPUTime()
	b.StopTimer()
	srvEnd, err := cpu()
	if err != nil {
		b.Fatal(err)
	}
	if cliOK {
		b.ReportMetric(float64(cliEnd-cliStart)/1e3/float64(b.N), "client-cpu-µs/op")
	}
	if srv.CPU != nil {
		b.ReportMetric(float64(srvEnd-srvStart)/1e3/float64(b.N), srv.Name+"-cpu-µs/op")
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))]) / 1e3
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(0.999), "p99.9-µs")
}
