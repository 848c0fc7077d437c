package redisstore

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/go-ratelimit/ratelimit"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua lua/fast/*.lua
var luaFiles embed.FS

// script is one algorithm's Lua source: the shared prelude, the bucket helpers for the
// bucket algorithms, and the algorithm's body. Only these embedded files make up a script.
type script struct {
	src     string
	hash    string // SHA-1 of src, as EVALSHA wants it
	hashArg any    // hash, boxed once for go-redis
}

// scripts holds the script of each algorithm, indexed by ratelimit.Algorithm, and batch
// the script of TakeAll.
var scripts, batch = loadScripts()

func loadScripts() ([ratelimit.GCRA + 1]*script, *script) {
	prelude, bucket := mustRead("lua/prelude.lua"), mustRead("lua/bucket.lua")
	var s [ratelimit.GCRA + 1]*script
	all := prelude + "\n" + bucket
	for alg := ratelimit.FixedWindow; alg <= ratelimit.GCRA; alg++ {
		body := mustRead("lua/" + alg.String() + ".lua")
		src := prelude + "\n"
		if bucketAlg(alg) {
			src += bucket + "\n"
		}
		tail := "\nreturn run_one(step_" + alg.String() + ")\n"
		if fast, err := luaFiles.ReadFile("lua/fast/" + alg.String() + ".lua"); err == nil {
			// The fast path goes first and returns, unless it falls through to the general
			// path with its instant: the general helpers are then defined only when needed.
			f := string(fast)
			if bucketAlg(alg) {
				f = strings.Replace(f, "--@decide\n", mustRead("lua/fast/decide.lua"), 1)
			}
			src = mustRead("lua/fast/clock.lua") + "\n" + f + "\n" + src
			tail = "\nreturn run_one(step_" + alg.String() + ", fast_now)\n"
		}
		s[alg] = newScript(src + body + tail)
		all += "\n" + body
	}
	return s, newScript(all + "\n" + mustRead("lua/batch.lua"))
}

func bucketAlg(alg ratelimit.Algorithm) bool {
	return alg == ratelimit.TokenBucket || alg == ratelimit.LeakyBucket || alg == ratelimit.GCRA
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	h := hex.EncodeToString(sum[:])
	return &script{src: src, hash: h, hashArg: h}
}

func mustRead(name string) string {
	b, err := luaFiles.ReadFile(name)
	if err != nil {
		panic("redisstore: missing embedded script " + name) // a build error, not a run-time condition
	}
	return string(b)
}

// backend runs the scripts on one kind of client.
type backend interface {
	// eval runs sc on keys with args and returns the reply's integers, checking that there
	// are want of them. It sends the script at most once per attempt: a call that fails may
	// have run. boxed, when not nil, holds args already converted to interfaces.
	eval(ctx context.Context, sc *script, keys, args []string, boxed []any, want int) ([]int64, error)
	del(ctx context.Context, key string) error
	ping(ctx context.Context) error
}

// goRedis runs the scripts through a go-redis client, in shared pipelines when co is set.
type goRedis struct {
	c    redis.UniversalClient
	co   *coalescer
	pool sync.Pool // *[]any, the command's arguments
}

// newGoRedis returns the backend of client. The scripts of concurrent calls share
// pipelines unless alone, on a client of one server (a *redis.Client, which a failover
// client also is): a Cluster or Ring client sends each call's script alone, so that one
// slow shard never holds the calls of the others.
func newGoRedis(client redis.UniversalClient, alone bool) *goRedis {
	g := &goRedis{c: client}
	if _, single := client.(*redis.Client); single && !alone {
		g.co = &coalescer{}
	}
	return g
}

// process sends cmd, at most once.
func (g *goRedis) process(ctx context.Context, cmd *redis.Cmd) {
	if g.co != nil {
		g.co.do(ctx, g.c, cmd)
		return
	}
	_ = g.c.Process(ctx, noRetryCmd{cmd})
}

// noRetryCmd is a command go-redis must send at most once: a script that may have run must
// not run again behind the caller's back, or one decision would consume twice. go-redis
// consults NoRetry before each of its own retries; the store retries by itself, and only
// after errors that prove the script did not run.
type noRetryCmd struct{ *redis.Cmd }

func (noRetryCmd) NoRetry() bool { return true }

// eval runs sc by EVALSHA, and by EVAL when the server answers NOSCRIPT (a restarted
// server, a promoted replica, SCRIPT FLUSH): NOSCRIPT proves the script did not run, so
// sending it again is safe.
func (g *goRedis) eval(ctx context.Context, sc *script, keys, args []string, boxed []any, want int) ([]int64, error) {
	ap, _ := g.pool.Get().(*[]any)
	if ap == nil {
		ap = new([]any)
	}
	defer g.pool.Put(ap)
	a := append((*ap)[:0], "evalsha", sc.hashArg, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	if boxed != nil {
		a = append(a, boxed...)
	} else {
		for _, x := range args {
			a = append(a, x)
		}
	}
	*ap = a
	cmd := redis.NewCmd(ctx, a...)
	g.process(ctx, cmd)
	v, err := cmd.Result()
	if err != nil && isNoScript(err) {
		a[0], a[1] = "eval", sc.src
		cmd = redis.NewCmd(ctx, a...)
		_ = g.c.Process(ctx, noRetryCmd{cmd})
		v, err = cmd.Result()
	}
	if err != nil {
		return nil, err
	}
	return decodeGoRedis(v, want)
}

func (g *goRedis) del(ctx context.Context, key string) error { return g.c.Del(ctx, key).Err() }

func (g *goRedis) ping(ctx context.Context) error { return g.c.Ping(ctx).Err() }

func isNoScript(err error) bool {
	msg, ok := serverError(err)
	return ok && strings.HasPrefix(msg, "NOSCRIPT")
}
