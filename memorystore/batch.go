package memorystore

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

var _ ratelimit.BatchStore = (*Store)(nil)

// batchItem is one request of a TakeAll, validated.
type batchItem struct {
	k     id
	shard int
	alg   ratelimit.Algorithm
	p     algo.Params
	n     uint64
	next  algo.State // the state to store if the batch passes
	d     algo.Decision
}

// smallBatch is the number of requests TakeAll handles without allocating.
const smallBatch = 8

// TakeAll implements [ratelimit.BatchStore]: it locks the shards of every request, in
// index order, decides each request on the current state, and stores the new states only
// if every request passed.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("memorystore: TakeAll: %d results for %d requests", len(results), len(reqs))
	}
	if err := s.ready(ctx); err != nil {
		return false, err
	}
	var itemBuf [smallBatch]batchItem
	var shardBuf [smallBatch]int
	items, shards := itemBuf[:0], shardBuf[:0]
	if len(reqs) > smallBatch {
		items, shards = make([]batchItem, 0, len(reqs)), make([]int, 0, len(reqs))
	}
	for _, r := range reqs {
		it, err := s.item(r)
		if err != nil {
			return false, err
		}
		for _, prev := range items {
			if prev.k == it.k {
				return false, fmt.Errorf("%w: %q appears twice under %v in one TakeAll", ratelimit.ErrInvalidKey, r.Key, r.Algorithm)
			}
		}
		items = append(items, it)
		shards = insertSorted(shards, it.shard)
	}

	now := s.now()
	for _, i := range shards {
		s.shards[i].mu.Lock()
	}
	allowed := true
	for i := range items {
		it := &items[i]
		sh := &s.shards[it.shard]
		if it.alg == ratelimit.SlidingWindowLog {
			it.d = s.log(sh, it.k).Check(now, it.p, it.n)
		} else {
			it.next, it.d = algo.Take(it.alg, s.lookup(sh, it.k, it.alg, now, it.p), now, it.p, it.n)
		}
		allowed = allowed && it.d.Allowed
	}
	for i := range items {
		it := &items[i]
		sh := &s.shards[it.shard]
		switch {
		case !it.d.Allowed || it.n == 0:
		case !allowed:
			// Nothing is taken: report what is available now.
			if it.alg == ratelimit.SlidingWindowLog {
				it.d = s.log(sh, it.k).Check(now, it.p, 0)
			} else {
				_, it.d = algo.Take(it.alg, s.lookup(sh, it.k, it.alg, now, it.p), now, it.p, 0)
			}
		case it.alg == ratelimit.SlidingWindowLog:
			s.takeLog(sh, it.k, now, it.p, it.n)
		default:
			s.put(sh, it.k, now, it.next, &it.d)
		}
	}
	for _, i := range shards {
		s.shards[i].mu.Unlock()
	}
	for i := range items {
		results[i] = items[i].d.Result(items[i].p)
	}
	return allowed, nil
}

// item validates r.
func (s *Store) item(r ratelimit.Request) (batchItem, error) {
	if err := ratelimit.CheckKey(r.Key); err != nil {
		return batchItem{}, err
	}
	var buf compiled
	c, err := s.params(r.Algorithm, r.Limit, &buf)
	if err != nil {
		return batchItem{}, err
	}
	p := c.p
	n, err := p.Cost(r.N)
	if err != nil {
		return batchItem{}, err
	}
	k := s.id(r.Key, r.Algorithm)
	return batchItem{k: k, shard: int(k.b >> s.shardShift), alg: r.Algorithm, p: p, n: n}, nil
}

// emptyLog stands for the log of a key not held yet. It is only ever read.
var emptyLog algo.Log

// log returns k's log, or an empty one, for reading; sh is locked.
func (s *Store) log(sh *shard, k id) *algo.Log {
	if ls := sh.logs[k]; ls != nil {
		return &ls.log
	}
	return &emptyLog
}

// insertSorted adds v to the ascending set xs.
func insertSorted(xs []int, v int) []int {
	i := 0
	for i < len(xs) && xs[i] < v {
		i++
	}
	if i < len(xs) && xs[i] == v {
		return xs
	}
	xs = append(xs, 0)
	copy(xs[i+1:], xs[i:])
	xs[i] = v
	return xs
}
