package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// BenchmarkTake measures GCRA decisions on 100,000 existing keys, one process, with the
// pure-Go driver, under synchronous=NORMAL (what Open sets) and FULL, and the first
// decision of new keys (the insert path) apart.
func BenchmarkTake(b *testing.B) {
	const keys = 100_000
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("user:%d", i)
	}
	// Each unit holds an hour, so no existing row expires, or is swept, during the run.
	l := ratelimit.Limit{Rate: 10_000, Period: 10_000 * time.Hour}
	ctx := context.Background()
	for _, sync := range []string{"NORMAL", "FULL"} {
		path := filepath.Join(b.TempDir(), "bench.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		s, err := New(db, &Options{Failure: Failure{Policy: ratelimit.FailError, Timeout: 10e9}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("insert/synchronous="+sync, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := s.Take(ctx, fmt.Sprintf("new:%d", i), ratelimit.GCRA, l, 1); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		for _, k := range names {
			if _, err := s.Take(ctx, k, ratelimit.GCRA, l, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("existing/synchronous="+sync, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := s.Take(ctx, names[i%keys], ratelimit.GCRA, l, 1); err != nil {
					b.Fatal(err)
				}
				i += 7919
			}
		})
		s.Close()
		db.Close()
	}
}
