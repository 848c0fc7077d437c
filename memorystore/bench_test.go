package memorystore

import (
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
