package algo

import (
	"testing"
	"time"
)

func TestLogCodec(t *testing.T) {
	p := Params{Rate: 10, Period: uint64(time.Second), Cap: 10}
	var l Log
	for i, at := range []int64{1e9, 1e9, 1.2e9, 1.5e9, 2.3e9} {
		if d := l.Take(at, p, uint64(i%2+1)); !d.Allowed {
			t.Fatalf("step %d: Take(%d) denied", i, at)
		}
	}
	b := l.AppendBinary(nil)
	got, err := DecodeLog(b)
	if err != nil {
		t.Fatal(err)
	}
	// The decoded log decides as the original at every instant and cost.
	for _, at := range []int64{2.3e9, 2.4e9, 2.5e9, 3.2e9, 4e9} {
		for n := uint64(0); n <= 10; n++ {
			if a, b := l.Check(at, p, n), got.Check(at, p, n); a != b {
				t.Fatalf("Check(%d, %d) = %+v decoded, want %+v", at, n, b, a)
			}
		}
	}
	if empty, err := DecodeLog((&Log{}).AppendBinary(nil)); err != nil || empty.sum != 0 {
		t.Errorf("empty log decoded to %+v, %v", empty, err)
	}
	for _, bad := range [][]byte{nil, {5}, append(b, 0), b[:len(b)-1], {2, 2, 1, 0, 1}, {1, 2, 0}} {
		if _, err := DecodeLog(bad); err == nil {
			t.Errorf("DecodeLog(%v) accepted", bad)
		}
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add([]byte{2, 2, 1, 2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLog(b)
		if err != nil {
			return
		}
		if again, err := DecodeLog(l.AppendBinary(nil)); err != nil || len(again.entries) != len(l.entries) {
			t.Fatalf("re-encoding %v: %v", b, err)
		}
	})
}
