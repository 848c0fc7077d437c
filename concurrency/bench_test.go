package concurrency

import (
	"context"
	"testing"
)

// BenchmarkAcquireRelease measures one Acquire and its Release from every goroutine at
// once, with a limit that is never reached, so it times the fast path.
func BenchmarkAcquireRelease(b *testing.B) {
	for _, bc := range []struct {
		name string
		alg  Algorithm
	}{{"fixed", Fixed(1 << 20)}, {"vegas", &Vegas{}}, {"gradient2", &Gradient2{}}, {"aimd", &AIMD{}}} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := New(&Options{Algorithm: bc.alg, InitialLimit: 1 << 20, MaxLimit: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					t, _ := l.Acquire(ctx)
					t.Release(Success)
				}
			})
		})
	}
}

// BenchmarkPartitionAcquireRelease is BenchmarkAcquireRelease through a partition.
func BenchmarkPartitionAcquireRelease(b *testing.B) {
	l, err := New(&Options{InitialLimit: 1 << 20, MaxLimit: 1 << 20, Partitions: map[string]float64{"a": 0.7, "b": 0.3}})
	if err != nil {
		b.Fatal(err)
	}
	p := l.Partition("a")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, _ := p.Acquire(ctx)
			t.Release(Success)
		}
	})
}
