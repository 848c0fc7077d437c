package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// leaseCall is one script call of a lease round trip: its key and arguments, then its
// reply, want integers, or its own error (a server error about this call alone).
type leaseCall struct {
	key  string
	args []string
	want int
	vals []int64
	err  error
}

// leaseConn sends the scripts of a lease round trip. evalAll sends sc once for each call,
// pipelined, by EVALSHA; the calls the server answers NOSCRIPT (which proves they did not
// run) are sent again with the script. No call is sent twice otherwise. It returns an
// error when the round trip failed as a whole (the calls may or may not have run); else
// each call holds its own reply or error.
type leaseConn interface {
	evalAll(ctx context.Context, sc *script, calls []leaseCall) error
}

// leaseConnOf returns the lease path of a Store's backend: a go-redis pipeline, or a
// rueidis DoMulti.
func leaseConnOf(b backend) leaseConn {
	switch b := b.(type) {
	case *goRedis:
		return goRedisLease{b.c}
	case *rueidisBackend:
		return rueidisLease{b.c}
	case *dialedBackend:
		return dialedLease{b}
	}
	panic(fmt.Sprintf("redisstore: no lease path for backend %T", b)) // every backend has one
}

// goRedisLease pipelines through go-redis.
type goRedisLease struct{ c redis.UniversalClient }

func (g goRedisLease) evalAll(ctx context.Context, sc *script, calls []leaseCall) error {
	cmds := make([]*redis.Cmd, len(calls))
	for i := range calls {
		cmds[i] = redis.NewCmd(ctx, g.args("evalsha", sc.hashArg, &calls[i])...)
	}
	if err := g.send(ctx, cmds); err != nil {
		return err
	}
	var again []*redis.Cmd
	var which []int
	for i, c := range cmds {
		if isNoScript(c.Err()) {
			again = append(again, redis.NewCmd(ctx, c.Args()...))
			which = append(which, i)
		}
	}
	if len(again) > 0 {
		if err := g.loadScript(ctx, sc); err != nil {
			return err
		}
		if err := g.send(ctx, again); err != nil {
			return err
		}
		for j, i := range which {
			cmds[i] = again[j]
		}
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err == nil {
			calls[i].vals, err = decodeGoRedis(v, calls[i].want)
		}
		calls[i].err = err
	}
	return nil
}

func (goRedisLease) args(verb string, sc any, c *leaseCall) []any {
	a := make([]any, 0, 3+1+len(c.args))
	a = append(a, verb, sc, 1, c.key)
	for _, x := range c.args {
		a = append(a, x)
	}
	return a
}

// send pipelines cmds, each marked not retryable, so go-redis never sends one twice.
func (g goRedisLease) send(ctx context.Context, cmds []*redis.Cmd) error {
	pipe := g.c.Pipeline()
	for _, c := range cmds {
		_ = pipe.Process(ctx, noRetryCmd{c})
	}
	_, err := pipe.Exec(ctx)
	var re redis.Error
	if err != nil && errors.As(err, &re) {
		return nil // a reply of one command, kept in it
	}
	return err
}

// loadScript loads sc on the server, or on every primary of a Cluster.
func (g goRedisLease) loadScript(ctx context.Context, sc *script) error {
	if cc, ok := g.c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.ScriptLoad(ctx, sc.src).Err()
		})
	}
	return g.c.ScriptLoad(ctx, sc.src).Err()
}

// rueidisLease sends the calls with one DoMulti, which rueidis writes as one pipeline (per
// Cluster node). rueidis retries read-only commands only, so no script runs twice.
type rueidisLease struct{ c rueidis.Client }

func (r rueidisLease) evalAll(ctx context.Context, sc *script, calls []leaseCall) error {
	cmds := make(rueidis.Commands, len(calls))
	for i := range calls {
		c := &calls[i]
		cmds[i] = r.c.B().Evalsha().Sha1(sc.hash).Numkeys(1).Key(c.key).Arg(c.args...).Build()
	}
	res := r.c.DoMulti(ctx, cmds...)
	var again rueidis.Commands
	var which []int
	for i := range res {
		if isNoScript(res[i].Error()) {
			c := &calls[i]
			again = append(again, r.c.B().Eval().Script(sc.src).Numkeys(1).Key(c.key).Arg(c.args...).Build())
			which = append(which, i)
		}
	}
	if len(again) > 0 {
		for j, x := range r.c.DoMulti(ctx, again...) {
			res[which[j]] = x
		}
	}
	for i := range res {
		if err := res[i].Error(); err != nil {
			if _, ok := rueidis.IsRedisErr(err); !ok {
				return err // the connection failed: the round trip as a whole
			}
		}
	}
	for i := range res {
		calls[i].vals, calls[i].err = decodeRueidis(res[i], calls[i].want)
	}
	return nil
}

// decodeRueidis reads a script's reply of want integers.
func decodeRueidis(res rueidis.RedisResult, want int) ([]int64, error) {
	if err := res.Error(); err != nil {
		return nil, err
	}
	msgs, err := res.ToArray()
	if err != nil || len(msgs) != want {
		return nil, fmt.Errorf("%w: %v (%d elements)", errReply, err, len(msgs))
	}
	x := make([]int64, want)
	for i := range msgs {
		if x[i], err = msgs[i].AsInt64(); err != nil {
			return nil, fmt.Errorf("%w: element %d: %v", errReply, i, err)
		}
	}
	return x, nil
}

// dialedLease is the lease path of a Store from DialRueidis: its client once connected.
type dialedLease struct{ d *dialedBackend }

func (d dialedLease) evalAll(ctx context.Context, sc *script, calls []leaseCall) error {
	if b := d.d.client.Load(); b != nil {
		return rueidisLease{b.c}.evalAll(ctx, sc, calls)
	}
	return d.d.unconnected()
}
