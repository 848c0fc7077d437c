package algo

import "math/bits"

// u128 is an unsigned 128-bit integer: the wide intermediate that keeps the bucket
// arithmetic exact (a capacity of 10^9 units over 365 days is 3·10^25 unit·nanoseconds).
type u128 struct{ hi, lo uint64 }

func mul(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	return u128{a.hi + b.hi + carry, lo}
}

func (a u128) addSmall(b uint64) u128 { return a.add(u128{0, b}) }

// sub returns a − b, or 0 when b > a.
func (a u128) sub(b u128) u128 {
	if a.less(b) {
		return u128{}
	}
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	return u128{a.hi - b.hi - borrow, lo}
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// div returns a / d and a % d. The callers guarantee the quotient fits in 64 bits (a.hi < d).
func (a u128) div(d uint64) (q, r uint64) { return bits.Div64(a.hi, a.lo, d) }

// divCeil returns ⌈a / d⌉ under the same guarantee as div.
func (a u128) divCeil(d uint64) uint64 {
	q, r := a.div(d)
	if r != 0 {
		q++
	}
	return q
}
