package sql

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/benchload"
	"github.com/go-ratelimit/ratelimit/internal/pgtest"
	"github.com/go-ratelimit/ratelimit/pgstore"
	"github.com/jackc/pgx/v5/pgxpool"
)

const goroutines = 16

// BenchmarkPostgres measures GCRA decisions from 16 goroutines on a durable server
// (fsync and synchronous_commit on), on 100,000 existing keys and on new ones, with a
// logged table (durable), an UNLOGGED one, and synchronous_commit=off for the store's
// sessions.
func BenchmarkPostgres(b *testing.B) {
	srv := pgtest.Start(b, &pgtest.Options{Durable: true})
	for _, mode := range []string{"durable", "unlogged", "async-commit"} {
		b.Run("mode="+mode, func(b *testing.B) {
			cfg, err := pgxpool.ParseConfig(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxConns = goroutines
			if mode == "async-commit" {
				cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
			}
			ctx := context.Background()
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			table := "bench_" + strings.ReplaceAll(mode, "-", "_")
			s, err := pgstore.New(ctx, pool, &pgstore.Options{Table: table, Unlogged: mode == "unlogged",
				Failure: pgstore.Failure{Policy: ratelimit.FailError, Timeout: 10 * time.Second}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			take := func(ctx context.Context, key string) error {
				_, err := s.Take(ctx, key, ratelimit.GCRA, limit, 1)
				return err
			}
			server := benchload.Server{Name: "postgres"}
			if _, ok := benchload.ReadProcStat("self"); ok { // Linux: the postmaster and its backends
				server.CPU = func() (time.Duration, error) { return benchload.ProcessTreeCPU(srv.PID()) }
			}
			var fresh atomic.Int64
			b.Run("insert", func(b *testing.B) {
				benchload.Parallel(b, goroutines, server, func(ctx context.Context, _ int) error {
					return take(ctx, fmt.Sprintf("new:%d", fresh.Add(1)))
				})
			})
			if _, err := pool.Exec(ctx, `TRUNCATE `+table); err != nil {
				b.Fatal(err)
			}
			if err := fill(ctx, take); err != nil {
				b.Fatal(err)
			}
			b.Run("existing", func(b *testing.B) {
				benchload.Parallel(b, goroutines, server, func(ctx context.Context, i int) error {
					return take(ctx, names[i*7919%keys])
				})
				var size, rows int64
				err := pool.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass), (SELECT count(*) FROM `+table+`)`, table).Scan(&size, &rows)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(size)/float64(rows), "disk-B/key")
			})
		})
	}
}

// fill takes a unit of every key of names from 16 goroutines.
func fill(ctx context.Context, take func(context.Context, string) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < keys; i = next.Add(1) - 1 {
				if err := take(ctx, names[i]); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
