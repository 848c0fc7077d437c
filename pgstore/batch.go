package pgstore

import (
	"context"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	"github.com/jackc/pgx/v5"
)

// TakeAll implements [ratelimit.BatchStore]: one transaction locks every request's row (in
// a fixed order, so concurrent batches do not deadlock), decides them all on one server
// instant, and writes the units of all of them or of none. While the database fails the
// batch is answered by the Policy as a whole: [ratelimit.FailLocal] uses the local
// store's TakeAll.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	return s.core.TakeAll(ctx, reqs, results, func(ctx context.Context, body func(rowstate.Batch) error) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			return body(rowstate.Batch{
				Read: func(ctx context.Context, c rowstate.Call) (rowstate.Row, bool, int64, error) {
					return s.lock(ctx, tx, c)
				},
				Write: func(ctx context.Context, c rowstate.Call, r rowstate.Row) error {
					return s.write(ctx, tx, c, r)
				},
			})
		})
	})
}
