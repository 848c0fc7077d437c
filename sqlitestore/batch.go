package sqlitestore

import (
	"context"
	"database/sql"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/rowstate"
)

// TakeAll implements [ratelimit.BatchStore]: one immediate transaction reads every
// request's row, decides them all, and writes the units of all of them or of none. While
// the database fails the batch is answered by the Policy as a whole:
// [ratelimit.FailLocal] uses the local store's TakeAll.
func (s *Store) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	return s.core.TakeAll(ctx, reqs, results, func(ctx context.Context, body func(rowstate.Batch) error) error {
		return s.tx(ctx, func(conn *sql.Conn) error {
			return body(rowstate.Batch{
				Read: func(ctx context.Context, c rowstate.Call) (rowstate.Row, bool, int64, error) {
					row, found, err := s.read(ctx, conn, c)
					return row, found, now(), err
				},
				Write: func(ctx context.Context, c rowstate.Call, r rowstate.Row) error {
					return s.write(ctx, conn, c, r)
				},
			})
		})
	})
}
