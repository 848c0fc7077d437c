package memorystore

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/go-ratelimit/ratelimit"
)

// The bench module compares these figures with other libraries; these benchmarks track
// the store alone.

var benchLimit = ratelimit.PerSecond(1_000_000_000)

func BenchmarkTakeHotKey(b *testing.B) {
	s := New(nil)
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		s.Take(ctx, "user:42", ratelimit.GCRA, benchLimit, 1)
	}
}

func BenchmarkTakeHotKeyParallel(b *testing.B) {
	s := New(nil)
	defer s.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Take(ctx, "user:42", ratelimit.GCRA, benchLimit, 1)
		}
	})
}

func BenchmarkTakeManyKeys(b *testing.B) {
	s := New(nil)
	defer s.Close()
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Take(ctx, keys[i], ratelimit.GCRA, benchLimit, 1)
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
}

// BenchmarkMemoryPerKey reports the live heap per key after one unit was taken on each of
// 1,000,000 distinct keys, per algorithm. Only the B/key metric is meant to be read.
func BenchmarkMemoryPerKey(b *testing.B) {
	const keys = 1_000_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "user:" + strconv.Itoa(i)
	}
	for _, alg := range algorithms {
		b.Run(alg.String(), func(b *testing.B) {
			var perKey float64
			for b.Loop() {
				before := liveHeap()
				s := New(&Options{MaxKeys: 4 * keys}) // room for a million logs, two keys each
				for _, k := range names {
					s.Take(ctx, k, alg, ratelimit.PerHour(10), 1)
				}
				after := liveHeap()
				if s.Len() != keys {
					b.Fatalf("store holds %d keys, want %d", s.Len(), keys)
				}
				s.Close()
				perKey = float64(after-before) / keys
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
