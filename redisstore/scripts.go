package redisstore

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"strings"

	"github.com/go-ratelimit/ratelimit"
	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// script is one algorithm's Lua source: the shared prelude, the bucket helpers for the
// bucket algorithms, and the algorithm's body. Only these embedded files make up a script.
type script struct {
	src  string
	hash string // SHA-1 of src, as EVALSHA wants it
}

// scripts holds the script of each algorithm, indexed by ratelimit.Algorithm.
var scripts = loadScripts()

func loadScripts() [ratelimit.GCRA + 1]*script {
	prelude, bucket := mustRead("lua/prelude.lua"), mustRead("lua/bucket.lua")
	var s [ratelimit.GCRA + 1]*script
	for alg := ratelimit.FixedWindow; alg <= ratelimit.GCRA; alg++ {
		src := prelude + "\n"
		if alg == ratelimit.TokenBucket || alg == ratelimit.LeakyBucket || alg == ratelimit.GCRA {
			src += bucket + "\n"
		}
		src += mustRead("lua/" + alg.String() + ".lua")
		sum := sha1.Sum([]byte(src))
		s[alg] = &script{src: src, hash: hex.EncodeToString(sum[:])}
	}
	return s
}

func mustRead(name string) string {
	b, err := luaFiles.ReadFile(name)
	if err != nil {
		panic("redisstore: missing embedded script " + name) // a build error, not a run-time condition
	}
	return string(b)
}

// noRetryCmd is a command go-redis must send at most once: a script that may have run must
// not run again behind the caller's back, or one decision would consume twice. go-redis
// consults NoRetry before each of its own retries; the store retries by itself, and only
// after errors that prove the script did not run.
type noRetryCmd struct{ *redis.Cmd }

func (noRetryCmd) NoRetry() bool { return true }

// run executes sc on key with args by EVALSHA, and by EVAL when the server answers
// NOSCRIPT (a restarted server, a promoted replica, SCRIPT FLUSH): NOSCRIPT proves the
// script did not run, so sending it again is safe. args is reused for both commands; its
// first four elements are filled in here.
func run(ctx context.Context, c redis.UniversalClient, sc *script, key string, args []any) (any, error) {
	args[0], args[1], args[2], args[3] = "evalsha", sc.hash, 1, key
	cmd := redis.NewCmd(ctx, args...)
	_ = c.Process(ctx, noRetryCmd{cmd})
	v, err := cmd.Result()
	if err != nil && isNoScript(err) {
		args[0], args[1] = "eval", sc.src
		cmd = redis.NewCmd(ctx, args...)
		_ = c.Process(ctx, noRetryCmd{cmd})
		v, err = cmd.Result()
	}
	return v, err
}

func isNoScript(err error) bool {
	var re redis.Error
	return asRedisError(err, &re) && strings.HasPrefix(re.Error(), "NOSCRIPT")
}
