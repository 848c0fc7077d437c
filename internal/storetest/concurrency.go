package storetest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
)

// testConcurrency checks that 64 goroutines hammering one key get exactly its capacity,
// with the Remaining of the allowed calls telling one consistent sequence.
func (s *suite) testConcurrency(t *testing.T) {
	const goroutines, attempts = 64, 8
	l := ratelimit.Limit{Rate: 100, Period: countPeriod}
	for _, alg := range algorithms {
		s.run(t, alg.String(), func(t *testing.T, st ratelimit.Store) {
			s.room(countPeriod, countRoom)
			c := capacity(alg, l)
			for _, mixed := range []bool{false, true} {
				key := "unit costs"
				if mixed {
					key = "mixed costs"
				}
				var (
					mu        sync.Mutex
					taken     int
					remaining []int // of the allowed calls
					wg        sync.WaitGroup
					start     = make(chan struct{})
				)
				for g := range goroutines {
					n := 1
					if mixed {
						n = 1 + g%3
					}
					wg.Go(func() {
						<-start
						for range attempts {
							r, err := st.Take(context.Background(), key, alg, l, n)
							if err != nil {
								t.Errorf("%v: Take(%q, %d) error %v, want none", alg, key, n, errText(err))
								return
							}
							s.check(t, fmt.Sprintf("%v: Take(%q, %d)", alg, key, n), alg, l, false, n, r)
							if r.Allowed {
								mu.Lock()
								taken += n
								remaining = append(remaining, r.Remaining)
								mu.Unlock()
							}
						}
					})
				}
				close(start) // all at once
				wg.Wait()
				p := s.probe(t, st, key, alg, l)
				left := p.take(0).Remaining
				if taken+left != c {
					t.Errorf("%v, %s: %d units taken by %d goroutines and %d remaining, want %d in all", alg, key, taken, goroutines, left, c)
				}
				if !mixed && left != 0 {
					t.Errorf("%v, %s: %d units remaining after %d attempts of 1 unit, want 0", alg, key, left, goroutines*attempts)
				}
				// The allowed calls happened one after another: each left a different
				// Remaining.
				sort.Ints(remaining)
				for i := 1; i < len(remaining); i++ {
					if remaining[i] == remaining[i-1] {
						t.Errorf("%v, %s: two allowed calls reported Remaining %d, want each a different one", alg, key, remaining[i])
						break
					}
				}
			}
		})
	}
}
