// Package logsample keeps an event that repeats from flooding the log: its first
// occurrence is logged, then at most one per interval, which carries the number of
// occurrences that were not logged since the last one that was.
package logsample

import (
	"sync"
	"time"
)

// Sampler decides which occurrences of one kind of event are logged. It is safe for
// concurrent use; the zero value logs every occurrence.
type Sampler struct {
	// Interval is the shortest time between two logged occurrences.
	Interval time.Duration

	mu      sync.Mutex
	next    time.Time // the earliest instant of the next logged occurrence
	skipped int
}

// Sample records an occurrence at now. It reports whether to log it and, when it does,
// how many occurrences were not logged since the previous logged one.
func (s *Sampler) Sample(now time.Time) (log bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.next) {
		s.skipped++
		return false, 0
	}
	skipped, s.skipped = s.skipped, 0
	s.next = now.Add(s.Interval)
	return true, skipped
}
