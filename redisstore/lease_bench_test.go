//go:build unix

package redisstore

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/redistest"
)

// BenchmarkLeaseLocal measures the local decision of a LeaseStore, from every goroutine
// of b.RunParallel, on one hot key and across 100,000 keys, under a limit no lease runs
// out of: the path that spends a lease, never waiting on Redis (refills go on in the
// background). It reports decisions per second and the CPU time per decision, user and
// system, of the whole process (the store's goroutine and go-redis included), which load
// on a shared machine changes less than time.
func BenchmarkLeaseLocal(b *testing.B) {
	c := newClient(b, redistest.Addr(b))
	limit := ratelimit.Limit{Rate: 1 << 40, Period: time.Hour}
	for _, keys := range []int{1, 100_000} {
		b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
			s := newLease(b, c, &LeaseOptions{Accuracy: 0.05, IdleAfter: time.Hour})
			names := make([]string, keys)
			ctx := context.Background()
			for i := range names {
				names[i] = "bench:" + strconv.Itoa(i)
				_, _ = s.Take(ctx, names[i], ratelimit.FixedWindow, limit, 1) // asks for the first lease
			}
			for i := range names { // every first lease has arrived
				for r, _ := s.Take(ctx, names[i], ratelimit.FixedWindow, limit, 1); !r.Allowed; r, _ = s.Take(ctx, names[i], ratelimit.FixedWindow, limit, 1) {
					time.Sleep(time.Millisecond)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					if r, err := s.Take(ctx, names[i%keys], ratelimit.FixedWindow, limit, 1); err != nil || !r.Allowed {
						b.Errorf("Take = %+v, %v", r, err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
		})
	}
}

// processCPU returns the CPU time the process has used, user and system, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
