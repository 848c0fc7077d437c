package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

var _ ratelimit.BatchStore = (*Store)(nil)

// TakeAll implements [ratelimit.BatchStore]: one script decides every request and takes
// the units of all of them or of none, atomically, in one round trip.
//
// On a Cluster every key of one batch must hash to the same slot, which holds when the
// requests share their key (several algorithms or limits on one user key); otherwise
// TakeAll returns an error matching [errors.ErrUnsupported]. On a go-redis Ring the
// requests must share their key. While Redis fails the batch is answered by
// [Options.Policy] as a whole: [ratelimit.FailLocal] uses the local store's TakeAll.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("redisstore: TakeAll: %d results for %d requests", len(results), len(reqs))
	}
	ps := make([]algo.Params, len(reqs))
	keys := make([]string, len(reqs))
	args := make([]string, 0, 6*len(reqs))
	for i, r := range reqs {
		p, cost, err := s.params(ctx, r.Key, r.Algorithm, r.Limit, r.N)
		if err != nil {
			return false, err
		}
		ps[i], keys[i] = p, s.key(r.Key, r.Algorithm)
		for j := range i {
			if keys[j] == keys[i] {
				return false, fmt.Errorf("%w: %q appears twice under %v in one TakeAll", ratelimit.ErrInvalidKey, r.Key, r.Algorithm)
			}
		}
		args = append(args, strconv.Itoa(int(r.Algorithm)), strconv.FormatUint(p.Rate, 10),
			strconv.FormatUint(p.Period/1000, 10), strconv.FormatUint(p.Cap, 10),
			strconv.FormatUint(cost, 10), strconv.FormatInt(fillMicros(p), 10))
	}
	if len(reqs) == 0 {
		return true, nil
	}
	if err := s.sameShard(reqs, keys); err != nil {
		return false, err
	}
	var x []int64
	answer, err := s.guard.Do(ctx, func(ctx context.Context) (err error) {
		x, err = s.call(ctx, batch, keys, args, nil, 1+6*len(reqs))
		if err == nil {
			err = decodeBatch(x, ps, results)
		}
		return err
	}, func(err error) error { return fmt.Errorf("redisstore: TakeAll: %w", err) })
	switch {
	case answer:
		return s.guard.AnswerAll(ctx, reqs, results, ps, err)
	case err != nil:
		return false, err
	}
	return x[0] == 1, nil
}

// decodeBatch reads the batch script's reply into results.
func decodeBatch(x []int64, ps []algo.Params, results []ratelimit.Result) error {
	if x[0] != 0 && x[0] != 1 {
		return fmt.Errorf("%w: batch verdict %d", errReply, x[0])
	}
	for i := range ps {
		d, err := decode(x[1+6*i : 7+6*i])
		if err != nil {
			return err
		}
		results[i] = d.Result(ps[i])
	}
	return nil
}

// sameShard checks that one script may touch every key: on a Cluster they must share a
// slot, on a Ring a hash tag.
func (s *Store) sameShard(reqs []ratelimit.Request, keys []string) error {
	cluster, ring := false, false
	switch b := s.backend.(type) {
	case *goRedis:
		switch b.c.(type) {
		case *redis.ClusterClient:
			cluster = true
		case *redis.Ring:
			ring = true
		}
	case *rueidisBackend:
		cluster = b.c.Mode() == rueidis.ClientModeCluster
	case *dialedBackend:
		// Not connected yet: the call fails and is answered by policy, whatever the mode.
		if c := b.client.Load(); c != nil {
			cluster = c.c.Mode() == rueidis.ClientModeCluster
		}
	}
	for i := 1; i < len(keys); i++ {
		switch {
		case ring && hashTag(keys[i]) != hashTag(keys[0]):
		case cluster && slot(hashTag(keys[i])) != slot(hashTag(keys[0])):
		default:
			continue
		}
		return fmt.Errorf("redisstore: TakeAll: keys %q and %q are on different shards, which one script cannot reach: %w",
			reqs[0].Key, reqs[i].Key, errors.ErrUnsupported)
	}
	return nil
}

// hashTag returns the part of a store key Redis Cluster hashes: the escaped user key.
func hashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					return key[i+1 : j]
				}
			}
		}
	}
	return key
}

// slot returns the Cluster slot of a hash tag: CRC16 (XMODEM) modulo 16384.
func slot(tag string) uint16 {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
