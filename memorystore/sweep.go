package memorystore

import "time"

// sweep removes expired keys every interval until the store is closed.
func (s *Store) sweep(interval time.Duration) {
	defer close(s.sweeperDone)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			for i := range s.shards {
				s.sweepShard(&s.shards[i])
			}
		}
	}
}

// sweepShard removes sh's expired keys and shrinks its table when it is mostly empty.
func (s *Store) sweepShard(sh *shard) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.expiry(s.now(), 0) - 1 // ticks since base, rounded up
	t := &sh.table
	for i := 0; i < len(t.slots); {
		if !t.slots[i].empty() && t.slots[i].expires&^overLimit <= now {
			t.remove(i) // a later entry may have moved into i: look at i again
			continue
		}
		i++
	}
	if t.count == 0 {
		t.slots = nil
	} else if t.count*4 < len(t.slots) && len(t.slots) > minSlots {
		t.resize(max(minSlots, t.count*2))
	}
	for k, ls := range sh.logs {
		if ls.expires&^overLimit <= now {
			s.dropLog(sh, k)
			continue
		}
		units := logUnits(&ls.log)
		ls.log.Compact()
		sh.logUnits += logUnits(&ls.log) - units
	}
	if len(sh.logs) == 0 {
		sh.logs = nil
	}
}
