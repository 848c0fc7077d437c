package algo

// Log is the state of one key under SlidingWindowLog: the instants of the units allowed
// in the last Period, oldest first, with the units allowed at the same instant merged.
// Its memory is O(units in the window). The zero Log is empty and ready to use.
type Log struct {
	entries []logEntry // live entries are entries[head:]
	head    int
	sum     uint64 // units in entries[head:]
}

type logEntry struct {
	at int64
	n  uint64
}

// Take allows n if the units allowed in (now − Period, now] plus n are at most Rate, and
// records them. A denial or n == 0 changes nothing, not even which entries have expired:
// a later call stamped earlier still sees them. An instant earlier than the newest entry
// is treated as that entry's instant.
func (l *Log) Take(now int64, p Params, n uint64) Decision {
	d := l.Check(now, p, n)
	if d.Allowed && n > 0 {
		if last, ok := l.last(); ok {
			now = max(now, last.at)
		}
		l.head, l.sum = l.live(now - int64(p.Period))
		l.record(now, n)
	}
	return d
}

// Check returns the decision Take would make, and changes nothing.
func (l *Log) Check(now int64, p Params, n uint64) Decision {
	last, ok := l.last()
	if ok {
		now = max(now, last.at)
	}
	head, sum := l.live(now - int64(p.Period))
	var d Decision
	if sum+n <= p.Rate {
		d.Allowed = true
		if n > 0 {
			sum += n
			last, ok = logEntry{now, n}, true
		}
	} else {
		d.RetryAfter = l.retry(head, sum+n-p.Rate, now, p)
	}
	d.Remaining = sat(p.Rate, sum)
	if sum > 0 && ok {
		d.ResetAfter = last.at + int64(p.Period) - now
	}
	return d
}

func (l *Log) last() (logEntry, bool) {
	if l.head == len(l.entries) {
		return logEntry{}, false
	}
	return l.entries[len(l.entries)-1], true
}

// live returns the index of the first entry after cutoff and the units from it on.
func (l *Log) live(cutoff int64) (head int, sum uint64) {
	head, sum = l.head, l.sum
	for head < len(l.entries) && l.entries[head].at <= cutoff {
		sum -= l.entries[head].n
		head++
	}
	return head, sum
}

func (l *Log) record(now int64, n uint64) {
	if l.head == len(l.entries) {
		l.entries, l.head = l.entries[:0], 0
	}
	l.sum += n
	if k := len(l.entries); k > l.head && l.entries[k-1].at == now {
		l.entries[k-1].n += n
		return
	}
	if l.head > 0 && len(l.entries) == cap(l.entries) && l.head >= len(l.entries)/2 {
		// Reuse the space of expired entries rather than grow.
		k := copy(l.entries, l.entries[l.head:])
		l.entries, l.head = l.entries[:k], 0
	}
	l.entries = append(l.entries, logEntry{now, n})
}

// retry returns the wait until excess units of the entries from head on have expired:
// entries expire Period after they were recorded.
func (l *Log) retry(head int, excess uint64, now int64, p Params) int64 {
	var expired uint64
	for _, e := range l.entries[head:] {
		expired += e.n
		if expired >= excess {
			return e.at + int64(p.Period) - now
		}
	}
	panic("algo: log holds fewer units than it counts") // unreachable: n ≤ Rate
}

// Room returns the number of entries the log has memory for: each takes 16 bytes, and one
// entry records the units allowed at one instant.
func (l *Log) Room() int { return cap(l.entries) }

// Compact gives back the memory of expired entries once they hold most of it; the
// decisions are unchanged.
func (l *Log) Compact() {
	live := len(l.entries) - l.head
	if live > cap(l.entries)/4 {
		return
	}
	if live == 0 {
		*l = Log{}
		return
	}
	l.entries = append([]logEntry(nil), l.entries[l.head:]...)
	l.head = 0
}
