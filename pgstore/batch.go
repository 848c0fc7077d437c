package pgstore

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	"github.com/jackc/pgx/v5"
)

// TakeAll implements [ratelimit.BatchStore]: one transaction locks every request's row (in
// a fixed order, so concurrent batches do not deadlock), decides them all on one server
// instant, and writes the units of all of them or of none. While the database fails the
// batch is answered by [Options.Policy] as a whole: [ratelimit.FailLocal] uses the local
// store's TakeAll.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("pgstore: TakeAll: %d results for %d requests", len(results), len(reqs))
	}
	if s.closed.Load() {
		return false, ratelimit.ErrClosed
	}
	calls, ps, err := rowstate.ValidateAll(ctx, reqs)
	if err != nil {
		return false, err
	}
	if len(reqs) == 0 {
		return true, nil
	}
	order := lockOrder(calls)
	items := make([]rowstate.Item, len(calls))
	var allowed bool
	answer, err := s.guard.Do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var now int64
			for _, i := range order {
				row, found, t, err := s.lock(ctx, tx, calls[i])
				if err != nil {
					return err
				}
				items[i] = rowstate.Item{Call: calls[i], Row: row, Found: found}
				now = t // the last instant, read with every lock held
			}
			var err error
			if allowed, err = rowstate.StepAll(items, now); err != nil {
				return stateErr(err)
			}
			for _, it := range items {
				if it.Write {
					if err := s.write(ctx, tx, it.Call, it.Next); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}, func(err error) error { return fmt.Errorf("pgstore: TakeAll: %w", err) })
	switch {
	case answer:
		return s.guard.AnswerAll(ctx, reqs, results, ps, err)
	case err != nil:
		return false, err
	}
	for i, it := range items {
		results[i] = it.D.Result(ps[i])
	}
	return allowed, nil
}

// lockOrder returns the indexes of calls ordered by (key, algorithm).
func lockOrder(calls []rowstate.Call) []int {
	order := make([]int, len(calls))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && less(calls[order[j]], calls[order[j-1]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order
}

func less(a, b rowstate.Call) bool {
	if a.Key != b.Key {
		return a.Key < b.Key
	}
	return a.Alg < b.Alg
}
