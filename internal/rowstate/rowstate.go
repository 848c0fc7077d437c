// Package rowstate is the design the SQL stores (sqlitestore, pgstore) share: the state of
// one (key, algorithm) as one row of integers, stepped by the internal/algo functions, and
// the arguments of the one-statement GCRA upsert. The stores own their SQL, transactions
// and clocks; this package decides.
package rowstate

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/algo"
)

// SchemaVersion is the version of the table layout the stores create and record in their
// meta table. A store refuses a database whose recorded version is newer than it knows.
const SchemaVersion = 1

// Row is the stored state of one (key, algorithm). At, X and Y are [algo.State]'s fields
// (X and Y as the bits of the uint64s); Log is a SlidingWindowLog's entries as
// [algo.Log.AppendBinary] writes them. Expires is the Unix instant, in nanoseconds, from
// which the row decides as no row would: the decision's ResetAfter after it was written.
//
// GCRA's state has no Y, so a GCRA row keeps there the instant it was written at: the
// floor of the next decision's clock. The other algorithms' states floor the clock at
// their At; a TAT lies ahead of its instant and cannot. Without the floor a call that
// read the clock, then waited for the row behind a later one, would be decided before
// it: never over-granting, but reporting one unit less than the key has.
type Row struct {
	At, X, Y int64
	Log      []byte
	Expires  int64
}

// Call is one request, validated.
type Call struct {
	Key  string
	Alg  ratelimit.Algorithm
	P    algo.Params
	Cost uint64
}

// Validate checks one request as every store does and returns it in the form Step takes.
func Validate(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (Call, error) {
	if err := ctx.Err(); err != nil {
		return Call{}, err
	}
	if err := ratelimit.CheckKey(key); err != nil {
		return Call{}, err
	}
	p, err := algo.NewParams(alg, limit)
	if err != nil {
		return Call{}, err
	}
	cost, err := p.Cost(n)
	if err != nil {
		return Call{}, err
	}
	return Call{Key: key, Alg: alg, P: p, Cost: cost}, nil
}

// ValidateAll validates a batch: each request, and that no (key, algorithm) appears twice.
func ValidateAll(ctx context.Context, reqs []ratelimit.Request) ([]Call, []algo.Params, error) {
	calls := make([]Call, len(reqs))
	ps := make([]algo.Params, len(reqs))
	for i, r := range reqs {
		c, err := Validate(ctx, r.Key, r.Algorithm, r.Limit, r.N)
		if err != nil {
			return nil, nil, err
		}
		for _, prev := range calls[:i] {
			if prev.Key == c.Key && prev.Alg == c.Alg {
				return nil, nil, fmt.Errorf("%w: %q appears twice under %v in one TakeAll", ratelimit.ErrInvalidKey, r.Key, r.Algorithm)
			}
		}
		calls[i], ps[i] = c, c.P
	}
	return calls, ps, nil
}

// Step decides c on row (found false: no row) at now, in nanoseconds. It returns the
// decision, and the row to write when write is true: a denial and n == 0 write nothing.
// A row whose Expires has passed is read as no row, as Redis forgets a key at its TTL.
func Step(c Call, row Row, found bool, now int64) (next Row, write bool, d algo.Decision, err error) {
	if found && c.Alg == ratelimit.GCRA {
		now = max(now, row.Y)
	}
	if found && row.Expires <= now {
		found = false
	}
	if c.Alg == ratelimit.SlidingWindowLog {
		var l algo.Log
		if found {
			if l, err = algo.DecodeLog(row.Log); err != nil {
				return Row{}, false, d, err
			}
		}
		d = l.Take(now, c.P, c.Cost)
		if !d.Allowed || c.Cost == 0 {
			return Row{}, false, d, nil
		}
		return Row{Log: l.AppendBinary(nil), Expires: now + d.ResetAfter}, true, d, nil
	}
	s := algo.Init(c.Alg, c.P, now)
	if found {
		s = algo.State{At: row.At, X: uint64(row.X), Y: uint64(row.Y)}
	}
	s, d = algo.Take(c.Alg, s, now, c.P, c.Cost)
	if !d.Allowed || c.Cost == 0 {
		return Row{}, false, d, nil
	}
	next = Row{At: s.At, X: int64(s.X), Y: int64(s.Y), Expires: now + d.ResetAfter}
	if c.Alg == ratelimit.GCRA {
		next.Y = now
	}
	return next, true, d, nil
}

// Item is one request of a batch with its row, and what [StepAll] decided for it.
type Item struct {
	Call
	Row   Row
	Found bool

	Next  Row
	Write bool
	D     algo.Decision
}

// StepAll decides a batch at now: every item's units are taken if each allows them, and
// none otherwise, in which case the items that would have passed report what is available
// now and write nothing. It reports whether the batch passed.
func StepAll(items []Item, now int64) (bool, error) {
	allowed := true
	for i := range items {
		it := &items[i]
		var err error
		if it.Next, it.Write, it.D, err = Step(it.Call, it.Row, it.Found, now); err != nil {
			return false, err
		}
		allowed = allowed && it.D.Allowed
	}
	if allowed {
		return true, nil
	}
	for i := range items {
		it := &items[i]
		if it.Write {
			peek := it.Call
			peek.Cost = 0
			_, _, it.D, _ = Step(peek, it.Row, it.Found, now) // it decoded above
			it.Write = false
		}
	}
	return false, nil
}
