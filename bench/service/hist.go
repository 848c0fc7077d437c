package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets: values below 2*subCount
// nanoseconds are exact, larger values fall in buckets 1/subCount of a power
// of two wide, so a reported percentile is within 1/subCount (0.8 %) of the
// recorded value. Its size is fixed whatever the number of samples.
//
// A histogram is not safe for concurrent use: each caller goroutine owns one
// and the run merges them at the end.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds
	min    int64
	max    int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits
	numBuckets = (63-subBits)*subCount + 2*subCount
)

// bucketOf returns the bucket index for v >= 0.
func bucketOf(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - subBits - 1
	if shift < 0 {
		shift = 0
	}
	return shift*subCount + int(u>>uint(shift))
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	shift := i/subCount - 1
	sub := int64(i - shift*subCount)
	lo = sub << uint(shift)
	return lo, lo + (int64(1) << uint(shift)) - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

func (h *histogram) count() uint64 { return h.n }

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method:
// the smallest recorded value such that at least q of the samples are at or
// below it, reported as the middle of its bucket and clamped to the exact
// minimum and maximum (q = 1 is the exact maximum). It returns 0 for an
// empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max) // the highest sample is known exactly
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
