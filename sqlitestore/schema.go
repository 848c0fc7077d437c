package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-ratelimit/ratelimit/internal/rowstate"
)

// queries are the store's statements for one table name.
type queries struct {
	schema, version          string
	read, write, reset, gcra string
	sweep, count             string
}

func newQueries(table string) queries {
	t := `"` + table + `"`
	meta := `"` + table + `_meta"`
	set, where := rowstate.GCRAUpdate(rowstate.Dialect{
		Now: "?3", Rate: "?4", NQ: "?5", NR: "?6", CQ: "?7", CR: "?8", Min: "min", Max: "max",
		Bool2Int: func(c string) string { return "(" + c + ")" },
	})
	return queries{
		schema: `CREATE TABLE IF NOT EXISTS ` + meta + ` (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO ` + meta + ` (name, value) VALUES ('schema_version', ` + fmt.Sprint(rowstate.SchemaVersion) + `) ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS ` + t + ` (
	k TEXT NOT NULL,
	alg INTEGER NOT NULL,
	at INTEGER NOT NULL,
	x INTEGER NOT NULL,
	y INTEGER NOT NULL,
	log BLOB,
	expires INTEGER NOT NULL,
	PRIMARY KEY (k, alg)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "` + table + `_expires" ON ` + t + ` (expires);`,
		version: `SELECT value FROM ` + meta + ` WHERE name = 'schema_version'`,
		read:    `SELECT at, x, y, log, expires FROM ` + t + ` WHERE k = ?1 AND alg = ?2`,
		write: `INSERT INTO ` + t + ` (k, alg, at, x, y, log, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (k, alg) DO UPDATE SET at = excluded.at, x = excluded.x, y = excluded.y, log = excluded.log, expires = excluded.expires`,
		reset: `DELETE FROM ` + t + ` WHERE k = ?1 AND alg = ?2`,
		gcra: `INSERT INTO ` + t + ` (k, alg, at, x, y, log, expires) VALUES (?1, ?2, ?3 + ?5, ?6, ?3, NULL, ?3 + ?5 + (?6 > 0))
ON CONFLICT (k, alg) DO UPDATE SET ` + set + ` WHERE ` + where + `
RETURNING at, x, y`,
		sweep: `DELETE FROM ` + t + ` WHERE (k, alg) IN (SELECT k, alg FROM ` + t + ` WHERE expires <= ?1 ORDER BY expires LIMIT ?2)`,
		count: `SELECT count(*) FROM ` + t,
	}
}

// migrate creates the tables on first use, in one immediate transaction so that processes
// opening a new file at once agree, and checks the recorded schema version.
func (s *Store) migrate(ctx context.Context) error {
	err := s.tx(ctx, func(conn *sql.Conn) error {
		for stmt := range strings.SplitSeq(s.q.schema, ";\n") {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		var v int
		if err := conn.QueryRowContext(ctx, s.q.version).Scan(&v); err != nil {
			return err
		}
		if v > rowstate.SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this version of sqlitestore knows (%d)", v, rowstate.SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// deleteExpired deletes at most batch expired rows, found through the index on expires.
func (s *Store) deleteExpired(ctx context.Context, batch int) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q.sweep, now(), batch)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
