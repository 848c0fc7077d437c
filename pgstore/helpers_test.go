package pgstore

import (
	"context"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
)

// reference runs internal/algo on one key, forgetting the state at its ResetAfter as the
// store's rows expire.
type reference struct {
	alg     ratelimit.Algorithm
	s       algo.State
	log     algo.Log
	expires int64
	held    bool
}

func (r *reference) take(now int64, p algo.Params, n uint64) algo.Decision {
	if r.held && now >= r.expires {
		r.held, r.log = false, algo.Log{}
	}
	if r.alg == ratelimit.SlidingWindowLog {
		d := r.log.Take(now, p, n)
		if d.Allowed && n > 0 {
			r.held, r.expires = true, now+d.ResetAfter
		}
		return d
	}
	s := r.s
	if !r.held {
		s = algo.Init(r.alg, p, now)
	}
	s, d := algo.Take(r.alg, s, now, p, n)
	if d.Allowed && n > 0 {
		r.s, r.held, r.expires = s, true, now+d.ResetAfter
	}
	return d
}

func rowstateCall(t *testing.T, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) rowstate.Call {
	t.Helper()
	c, err := rowstate.Validate(context.Background(), key, alg, l, n)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
