package pgstore

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit/internal/rowstate"
	"github.com/jackc/pgx/v5"
)

// nowNs is the server's clock in Unix nanoseconds: clock_timestamp(), the instant the
// expression is evaluated (not the transaction's start), whose resolution is a microsecond.
const nowNs = `((extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)`

// queries are the store's statements for one table name.
type queries struct {
	name                        string // the table's
	meta, table, index, version string
	peek, lock, placeholder     string
	write, reset, gcra, now     string
	sweep, count                string
}

func newQueries(table string) queries {
	t := `"` + table + `"`
	meta := `"` + table + `_meta"`
	set, where := rowstate.GCRAUpdate(rowstate.Dialect{
		Now: "excluded.y", Rate: "$3::bigint", NQ: "$4::bigint", NR: "$5::bigint", CQ: "$6::bigint", CR: "$7::bigint",
		Min: "LEAST", Max: "GREATEST", Bool2Int: func(c string) string { return "(" + c + ")::int" }, Row: "r.",
	})
	return queries{
		name: table,
		meta: `CREATE TABLE IF NOT EXISTS ` + meta + ` (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO ` + meta + ` (name, value) VALUES ('schema_version', ` + fmt.Sprint(rowstate.SchemaVersion) + `) ON CONFLICT (name) DO NOTHING`,
		table: `TABLE IF NOT EXISTS ` + t + ` (
	k bytea NOT NULL,
	alg smallint NOT NULL,
	at bigint NOT NULL,
	x bigint NOT NULL,
	y bigint NOT NULL,
	log bytea,
	expires bigint NOT NULL,
	PRIMARY KEY (k, alg)
)`,
		index:   `CREATE INDEX IF NOT EXISTS "` + table + `_expires" ON ` + t + ` (expires)`,
		version: `SELECT value FROM ` + meta + ` WHERE name = 'schema_version'`,
		peek: `SELECT c.now, r.at, r.x, r.y, r.log, r.expires FROM (SELECT ` + nowNs + ` AS now) c
LEFT JOIN ` + t + ` r ON r.k = $1 AND r.alg = $2`,
		lock:        `SELECT at, x, y, log, expires FROM ` + t + ` WHERE k = $1 AND alg = $2 FOR UPDATE`,
		placeholder: `INSERT INTO ` + t + ` (k, alg, at, x, y, expires) VALUES ($1, $2, 0, 0, 0, 0) ON CONFLICT (k, alg) DO NOTHING`,
		now:         `SELECT ` + nowNs,
		write: `INSERT INTO ` + t + ` (k, alg, at, x, y, log, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (k, alg) DO UPDATE SET at = excluded.at, x = excluded.x, y = excluded.y, log = excluded.log, expires = excluded.expires`,
		reset: `DELETE FROM ` + t + ` WHERE k = $1 AND alg = $2`,
		// The server's instant rides in the proposed row's y. It is read before the
		// statement waits for a row another call holds, so the update decides at the later
		// of it and the row's y, the instant of the call that held it, and RETURNING reads
		// the instant decided at.
		gcra: `INSERT INTO ` + t + ` AS r (k, alg, at, x, y, log, expires)
SELECT $1::bytea, $2::smallint, c.now + $4::bigint, $5::bigint, c.now, NULL, c.now + $4::bigint + ($5::bigint > 0)::int FROM (SELECT ` + nowNs + ` AS now) c
ON CONFLICT (k, alg) DO UPDATE SET ` + set + ` WHERE ` + where + `
RETURNING r.at, r.x, r.y`,
		sweep: `DELETE FROM ` + t + ` WHERE (k, alg) IN (SELECT k, alg FROM ` + t + ` WHERE expires <= ` + nowNs + ` ORDER BY expires LIMIT $1 FOR UPDATE SKIP LOCKED)`,
		count: `SELECT count(*) FROM ` + t,
	}
}

// migrate creates the tables on first use and checks the recorded schema version, in one
// transaction under an advisory lock, so that processes starting at once agree.
func (s *Store) migrate(ctx context.Context, unlogged bool) error {
	create := "CREATE " + s.q.table
	if unlogged {
		create = "CREATE UNLOGGED " + s.q.table
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "ratelimit schema "+s.q.version); err != nil {
			return err
		}
		for _, stmt := range []string{s.q.meta, create, s.q.index} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		var v int64
		if err := tx.QueryRow(ctx, s.q.version).Scan(&v); err != nil {
			return err
		}
		if v > rowstate.SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this version of pgstore knows (%d)", v, rowstate.SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// deleteExpired deletes at most batch rows expired on the server's clock, found through
// the index on expires, skipping rows that decisions hold locked.
func (s *Store) deleteExpired(ctx context.Context, batch int) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.q.sweep, batch)
	return tag.RowsAffected(), err
}
