package main

import (
	"math"
	"sort"
	"testing"
	"time"
)

func TestBucketRangeHoldsItsValues(t *testing.T) {
	r := newRNG(1)
	check := func(v int64) {
		t.Helper()
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if width := hi - lo + 1; v >= 2*subCount && float64(width)/float64(lo) > 1.0/subCount+1e-12 {
			t.Fatalf("bucket [%d, %d] is %.4f of its value wide", lo, hi, float64(width)/float64(lo))
		}
	}
	for v := int64(0); v < 5000; v++ {
		check(v)
	}
	for range 100000 {
		check(int64(r.next() >> (1 + r.next()%63)))
	}
	check(math.MaxInt64)
	// Buckets are contiguous and increasing.
	for i := 1; i < numBuckets; i++ {
		plo, phi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if i >= bucketOf(math.MaxInt64) {
			break
		}
		if lo != phi+1 || plo > phi {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, phi)
		}
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestQuantilesMatchNearestRank(t *testing.T) {
	cases := map[string]func(r *rng, i int) int64{
		"small exact": func(_ *rng, i int) int64 { return int64(i % 200) },
		"uniform 50us..5ms": func(r *rng, _ int) int64 {
			return 50_000 + int64(r.next()%4_950_000)
		},
		"long tail": func(r *rng, _ int) int64 {
			v := 100_000 + int64(r.next()%100_000)
			if r.next()%100 == 0 {
				v *= 50
			}
			return v
		},
	}
	for name, gen := range cases {
		t.Run(name, func(t *testing.T) {
			r := newRNG(7)
			var h histogram
			var vals []int64
			for i := range 20001 {
				v := gen(r, i)
				vals = append(vals, v)
				h.record(time.Duration(v))
			}
			sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
			if h.count() != uint64(len(vals)) {
				t.Fatalf("count %d, want %d", h.count(), len(vals))
			}
			for _, q := range []float64{0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(vals, q)
				got := int64(h.quantile(q))
				if diff := math.Abs(float64(got - want)); diff > float64(want)/subCount+1 {
					t.Errorf("q%.3f = %d, want %d within 1/%d", q, got, want, subCount)
				}
			}
			if got := int64(h.quantile(1)); got != vals[len(vals)-1] {
				t.Errorf("max quantile %d, want exact max %d", got, vals[len(vals)-1])
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if got, want := float64(h.mean()), sum/float64(len(vals)); math.Abs(got-want) > 1 {
				t.Errorf("mean %.1f, want %.1f", got, want)
			}
		})
	}
}

func TestQuantileSmallSets(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 || h.mean() != 0 {
		t.Fatal("an empty histogram reports non-zero")
	}
	h.record(3 * time.Millisecond)
	for _, q := range []float64{0.01, 0.5, 0.99, 1} {
		if got := h.quantile(q); got != 3*time.Millisecond {
			t.Errorf("one sample: q%v = %v, want 3ms (clamped to min/max)", q, got)
		}
	}
	h = histogram{}
	for _, v := range []int64{10, 20, 30, 40} {
		h.record(time.Duration(v))
	}
	// Nearest rank: p50 of 4 samples is the 2nd, p99 the 4th.
	if got := h.quantile(0.5); got != 20 {
		t.Errorf("p50 of 10,20,30,40 = %v, want 20ns", got)
	}
	if got := h.quantile(0.99); got != 40 {
		t.Errorf("p99 of 10,20,30,40 = %v, want 40ns", got)
	}
	h.record(-5) // a clock step backwards counts as zero
	if got := h.quantile(0.01); got != 0 {
		t.Errorf("min after a negative sample = %v, want 0", got)
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	r := newRNG(3)
	var all, a, b, empty histogram
	for i := range 10000 {
		v := time.Duration(r.next() % uint64(10*time.Millisecond))
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	var m histogram
	m.merge(&empty)
	m.merge(&a)
	m.merge(&b)
	m.merge(&empty)
	if m.counts != all.counts || m.n != all.n || m.min != all.min || m.max != all.max {
		t.Fatal("merged histogram differs from the one recorded at once")
	}
	for _, q := range []float64{0.5, 0.99} {
		if m.quantile(q) != all.quantile(q) {
			t.Errorf("q%v: merged %v, together %v", q, m.quantile(q), all.quantile(q))
		}
	}
}
