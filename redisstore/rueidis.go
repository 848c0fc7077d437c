package redisstore

import (
	"context"

	"github.com/redis/rueidis"
)

// NewRueidis returns a Store like [New] on a rueidis client, whose automatic pipelining
// sends the concurrent decisions of many goroutines together: more decisions per second
// from the same server. The client may be standalone, Cluster or Sentinel; the caller owns
// it. rueidis never retries the store's scripts itself (it retries read-only commands
// only), so the store's own retry rules hold as with go-redis.
func NewRueidis(client rueidis.Client, opts *Options) *Store {
	return build(&rueidisBackend{c: client}, opts)
}

type rueidisBackend struct{ c rueidis.Client }

func (r *rueidisBackend) eval(ctx context.Context, sc *script, keys, args []string, _ []any, want int) ([]int64, error) {
	res := r.c.Do(ctx, r.c.B().Evalsha().Sha1(sc.hash).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
	if err := res.Error(); err != nil && isNoScript(err) {
		res = r.c.Do(ctx, r.c.B().Eval().Script(sc.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
	}
	return decodeRueidis(res, want)
}

func (r *rueidisBackend) del(ctx context.Context, key string) error {
	return r.c.Do(ctx, r.c.B().Del().Key(key).Build()).Error()
}

func (r *rueidisBackend) ping(ctx context.Context) error {
	return r.c.Do(ctx, r.c.B().Ping().Build()).Error()
}
