package redisstore

import (
	"strings"

	"github.com/go-ratelimit/ratelimit"
)

// algCodes are the suffixes naming each algorithm's state.
var algCodes = [...]string{
	ratelimit.FixedWindow:          "fw",
	ratelimit.SlidingWindowLog:     "swl",
	ratelimit.SlidingWindowCounter: "swc",
	ratelimit.TokenBucket:          "tb",
	ratelimit.LeakyBucket:          "lb",
	ratelimit.GCRA:                 "gcra",
}

// key returns the Redis key of key's state under alg: prefix + "{" + escaped key + "}:" +
// algorithm code, as in "ratelimit:{user:42}:tb". Redis Cluster hashes only the bytes
// between the first '{' and the next '}', so the slot depends on the user key alone, and
// the braces are the store's: the prefix has none, and the escape turns every '}' of the
// key into "%7D" (and '%' into "%25", so that distinct keys stay distinct). Every other
// byte, NUL and invalid UTF-8 included, is kept as is.
func (s *Store) key(key string, alg ratelimit.Algorithm) string {
	code := algCodes[alg]
	var b strings.Builder
	b.Grow(len(s.prefix) + len(key) + len(code) + 3 + 2*strings.Count(key, "}") + 2*strings.Count(key, "%"))
	b.WriteString(s.prefix)
	b.WriteByte('{')
	if strings.ContainsAny(key, "}%") {
		for i := 0; i < len(key); i++ {
			switch c := key[i]; c {
			case '}':
				b.WriteString("%7D")
			case '%':
				b.WriteString("%25")
			default:
				b.WriteByte(c)
			}
		}
	} else {
		b.WriteString(key)
	}
	b.WriteString("}:")
	b.WriteString(code)
	return b.String()
}
