package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
)

// TakeAll implements [ratelimit.BatchStore]: one immediate transaction reads every
// request's row, decides them all, and writes the units of all of them or of none. While
// the database fails the batch is answered by [Options.Policy] as a whole:
// [ratelimit.FailLocal] uses the local store's TakeAll.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("sqlitestore: TakeAll: %d results for %d requests", len(results), len(reqs))
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
	items := make([]rowstate.Item, len(calls))
	var allowed bool
	answer, err := s.guard.Do(ctx, func(ctx context.Context) error {
		return s.tx(ctx, func(conn *sql.Conn) error {
			for i, c := range calls {
				row, found, err := s.read(ctx, conn, c)
				if err != nil {
					return err
				}
				items[i] = rowstate.Item{Call: c, Row: row, Found: found}
			}
			var err error
			if allowed, err = rowstate.StepAll(items, now()); err != nil {
				return stateErr(err)
			}
			for _, it := range items {
				if it.Write {
					if err := s.write(ctx, conn, it.Call, it.Next); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}, func(err error) error { return fmt.Errorf("sqlitestore: TakeAll: %w", err) })
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
