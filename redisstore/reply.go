package redisstore

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// errReply reports a reply of a shape the scripts never send.
var errReply = errors.New("redisstore: unexpected reply")

// decodeGoRedis reads a script's reply as go-redis returns it: want integers.
func decodeGoRedis(v any, want int) ([]int64, error) {
	a, ok := v.([]any)
	if !ok || len(a) != want {
		return nil, fmt.Errorf("%w: %T %v", errReply, v, v)
	}
	x := make([]int64, want)
	for i, e := range a {
		n, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("%w: element %d is %T %v", errReply, i, e, e)
		}
		x[i] = n
	}
	return x, nil
}

// decode reads a script's reply, {allowed, remaining, retry_us, retry_ns, reset_us,
// reset_ns}, checking every element: anything else is an error, never a panic.
func decode(x []int64) (algo.Decision, error) {
	if len(x) != 6 {
		return algo.Decision{}, fmt.Errorf("%w: %d elements", errReply, len(x))
	}
	retry, ok1 := nanos(x[2], x[3])
	reset, ok2 := nanos(x[4], x[5])
	if x[0] != 0 && x[0] != 1 || x[1] < 0 || !ok1 || !ok2 || x[0] == 1 && retry != 0 {
		return algo.Decision{}, fmt.Errorf("%w: %v", errReply, x)
	}
	return algo.Decision{Allowed: x[0] == 1, Remaining: uint64(x[1]), RetryAfter: retry, ResetAfter: reset}, nil
}

// nanos returns us·1000 + ns, reporting false if it is negative or overflows.
func nanos(us, ns int64) (int64, bool) {
	if us < 0 || us > math.MaxInt64/1000-1 || ns < -1000 || ns > 1000 {
		return 0, false
	}
	d := us*1000 + ns
	return d, d >= 0
}

// serverError returns the message of an error reply from the server, from either client.
func serverError(err error) (string, bool) {
	var re redis.Error
	if errors.As(err, &re) {
		return re.Error(), true
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		return re.Error(), true
	}
	return "", false
}

// provesNotRun reports whether err shows that the script did not run, so that running it
// again cannot consume twice: the connection was never made, no connection was free, or
// the server refused the command before running it.
func provesNotRun(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	if msg, ok := serverError(err); ok {
		for _, p := range notRunPrefixes {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

// notRunPrefixes are the error replies of a server that did not run the script. READONLY
// comes from a replica (a stale primary after failover) at the script's first write,
// before any effect.
var notRunPrefixes = []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"}

// isUnavailable reports whether err means Redis could not decide, as opposed to a reply
// that shows a problem with the data or the store itself (a key holding another type, a
// reply the scripts never send). Unavailability is answered by policy; the rest is
// returned to the caller.
func isUnavailable(err error) bool {
	if errors.Is(err, errReply) {
		return false
	}
	if msg, ok := serverError(err); ok {
		return provesNotRun(err) || strings.HasPrefix(msg, "OOM") || strings.HasPrefix(msg, "NOREPLICAS")
	}
	return true // network errors, timeouts, closed clients
}
