package algo

import (
	"encoding/binary"
	"errors"
	"math"
)

// AppendBinary appends the live entries of l to b in a compact form that [DecodeLog]
// reads back: the count, then for each entry the instant as a difference from the one
// before (the first from zero) and the units, all as varints. Stores that keep a log as a
// value (a database column) use it.
func (l *Log) AppendBinary(b []byte) []byte {
	live := l.entries[l.head:]
	b = binary.AppendUvarint(b, uint64(len(live)))
	var prev int64
	for _, e := range live {
		b = binary.AppendVarint(b, e.at-prev)
		b = binary.AppendUvarint(b, e.n)
		prev = e.at
	}
	return b
}

var errLogCodec = errors.New("algo: malformed sliding window log")

// DecodeLog reads a log written by [Log.AppendBinary]. It returns an error for bytes that
// AppendBinary could not have written: truncated, trailing, instants out of order, or
// units that are zero or overflow.
func DecodeLog(b []byte) (Log, error) {
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return Log{}, errLogCodec
	}
	b = b[k:]
	l := Log{entries: make([]logEntry, 0, count)}
	var prev int64
	for range count {
		delta, k := binary.Varint(b)
		if k <= 0 || len(l.entries) > 0 && delta <= 0 {
			return Log{}, errLogCodec
		}
		b = b[k:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n == 0 || n > math.MaxUint64-l.sum {
			return Log{}, errLogCodec
		}
		b = b[k:]
		at := prev + delta
		if delta > 0 && at < prev {
			return Log{}, errLogCodec
		}
		l.entries = append(l.entries, logEntry{at, n})
		l.sum += n
		prev = at
	}
	if len(b) != 0 {
		return Log{}, errLogCodec
	}
	return l, nil
}
