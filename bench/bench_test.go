package bench

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// The speed scenarios use a limit no call can reach, so that every library allows every
// call and does the same work.
const (
	hugeBurst  = 1_000_000_000
	hugePeriod = time.Second
)

// numKeys is the number of distinct keys of BenchmarkManyKeys.
const numKeys = 100_000

// memKeys is the number of distinct keys BenchmarkMemoryPerKey inserts.
const memKeys = 1_000_000

// key returns the i-th key, in the style of a user ID.
func key(i int) string { return "user:" + strconv.Itoa(100000+i) }

// openHuge opens a's limiter with the huge limit, failing b if it cannot.
func openHuge(b *testing.B, a adapter) *instance {
	b.Helper()
	in, err := a.open(hugeBurst, hugePeriod)
	if err != nil {
		b.Fatalf("%s: open: %v", a.name, err)
	}
	return in
}

// cpuMeter measures the CPU time of the process over a benchmark's timed calls. On a
// machine shared with other work, CPU time per call varies far less than wall time, which
// includes the time the benchmark waited for a core.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter {
	t, _ := cpuTime()
	return cpuMeter{t}
}

// report reports the CPU time per call as cpu-ns/op.
func (m cpuMeter) report(b *testing.B, calls int64) {
	t, ok := cpuTime()
	if ok && calls > 0 {
		b.ReportMetric(float64(t-m.start)/float64(calls), "cpu-ns/op")
	}
}

// report checks that every timed call was allowed and without error, and reports
// allowed/op (1 when so).
func report(b *testing.B, calls, allowed, errs int64) {
	b.Helper()
	if calls == 0 {
		return
	}
	b.ReportMetric(float64(allowed)/float64(calls), "allowed/op")
	if errs != 0 || allowed != calls {
		b.Errorf("%d calls: %d allowed, %d errors; want all allowed", calls, allowed, errs)
	}
}

// clockBase is the reference instant of BenchmarkClock.
var clockBase = time.Now()

// BenchmarkClock measures the clock reads the limiters pay for on every call, in the same
// run as the scenarios: time.Since, as our store reads the monotonic clock, and time.Now,
// as the peers do.
func BenchmarkClock(b *testing.B) {
	b.Run("read=time.Since", func(b *testing.B) {
		var sum time.Duration
		cpu := startCPU()
		for b.Loop() {
			sum += time.Since(clockBase)
		}
		cpu.report(b, int64(b.N))
		if sum <= 0 {
			b.Fatal("the clock did not move")
		}
	})
	b.Run("read=time.Now", func(b *testing.B) {
		var sum int64
		cpu := startCPU()
		for b.Loop() {
			sum += time.Now().UnixNano()
		}
		cpu.report(b, int64(b.N))
		if sum == 0 {
			b.Fatal("the clock read zero")
		}
	})
}

// BenchmarkHotKey measures decisions on one key from one goroutine.
func BenchmarkHotKey(b *testing.B) {
	ctx := context.Background()
	for _, a := range adapters {
		b.Run("lib="+a.name, func(b *testing.B) {
			in := openHuge(b, a)
			defer in.close()
			allow := in.allow
			b.ReportAllocs()
			var calls, allowed, errs int64
			cpu := startCPU()
			for b.Loop() {
				ok, err := allow(ctx, "user:123456")
				calls++
				if ok {
					allowed++
				}
				if err != nil {
					errs++
				}
			}
			cpu.report(b, calls)
			report(b, calls, allowed, errs)
		})
	}
}

// BenchmarkHotKeyParallel measures decisions on one key from GOMAXPROCS goroutines.
func BenchmarkHotKeyParallel(b *testing.B) { hotKeyParallel(b, 1) }

// BenchmarkHotKey16 measures decisions on one key from 8·GOMAXPROCS goroutines (16 on two
// cores): more callers than cores, so holders of a lock get preempted.
func BenchmarkHotKey16(b *testing.B) { hotKeyParallel(b, 8) }

// hotKeyParallel measures decisions on one key from parallelism·GOMAXPROCS goroutines.
func hotKeyParallel(b *testing.B, parallelism int) {
	ctx := context.Background()
	for _, a := range adapters {
		b.Run("lib="+a.name, func(b *testing.B) {
			in := openHuge(b, a)
			defer in.close()
			allow := in.allow
			if _, err := allow(ctx, "user:123456"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var calls, allowed, errs atomic.Int64
			b.SetParallelism(parallelism)
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				var c, ok, e int64
				for pb.Next() {
					allowedNow, err := allow(ctx, "user:123456")
					c++
					if allowedNow {
						ok++
					}
					if err != nil {
						e++
					}
				}
				calls.Add(c)
				allowed.Add(ok)
				errs.Add(e)
			})
			b.StopTimer()
			cpu.report(b, calls.Load())
			report(b, calls.Load(), allowed.Load(), errs.Load())
		})
	}
}

// manyKeys returns numKeys distinct keys, checked distinct.
func manyKeys(tb testing.TB) []string {
	keys := make([]string, numKeys)
	seen := make(map[string]bool, numKeys)
	for i := range keys {
		keys[i] = key(i)
		seen[keys[i]] = true
	}
	if len(seen) != numKeys {
		tb.Fatalf("%d distinct keys, want %d", len(seen), numKeys)
	}
	return keys
}

// BenchmarkManyKeys measures decisions on numKeys distinct keys from GOMAXPROCS
// goroutines, each walking the keys from its own offset. Every key is inserted once before
// the timer starts, so the benchmark measures decisions on existing keys.
func BenchmarkManyKeys(b *testing.B) {
	ctx := context.Background()
	keys := manyKeys(b)
	for _, a := range adapters {
		b.Run("lib="+a.name, func(b *testing.B) {
			in := openHuge(b, a)
			defer in.close()
			allow := in.allow
			for _, k := range keys {
				if _, err := allow(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
			var goroutine atomic.Int64
			var calls, allowed, errs atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				// Spread the starting points: 0, 37%, 74%, 11%, ... of the slice.
				i := int(goroutine.Add(1)-1) * (numKeys * 37 / 100) % numKeys
				var c, ok, e int64
				for pb.Next() {
					allowedNow, err := allow(ctx, keys[i])
					if i++; i == numKeys {
						i = 0
					}
					c++
					if allowedNow {
						ok++
					}
					if err != nil {
						e++
					}
				}
				calls.Add(c)
				allowed.Add(ok)
				errs.Add(e)
			})
			b.StopTimer()
			cpu.report(b, calls.Load())
			report(b, calls.Load(), allowed.Load(), errs.Load())
		})
	}
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerKey inserts memKeys distinct short keys into a fresh store per
// iteration and reports the live heap it grew by, per key (B/key). The keys are built
// as they are inserted, as a server builds them from requests, so a store that keeps its
// key pays for it and one that copies it pays for the copy. ns/op is the time to insert
// memKeys keys and collect twice; only B/key is meant to be read.
func BenchmarkMemoryPerKey(b *testing.B) {
	ctx := context.Background()
	for _, a := range adapters {
		b.Run("lib="+a.name, func(b *testing.B) {
			b.ReportAllocs()
			var total float64
			var iters int
			for b.Loop() {
				before := heapAlloc()
				in := openHuge(b, a)
				allow := in.allow
				var allowed int
				for i := range memKeys {
					ok, err := allow(ctx, key(i))
					if err != nil {
						b.Fatal(err)
					}
					if ok {
						allowed++
					}
				}
				after := heapAlloc()
				runtime.KeepAlive(allow)
				if allowed != memKeys {
					b.Fatalf("%d of %d first calls allowed", allowed, memKeys)
				}
				if in.keys != nil && in.keys() != memKeys {
					b.Fatalf("store holds %d keys, want %d: it evicted", in.keys(), memKeys)
				}
				in.close()
				total += (float64(after) - float64(before)) / memKeys
				iters++
			}
			b.ReportMetric(total/float64(iters), "B/key")
		})
	}
}
