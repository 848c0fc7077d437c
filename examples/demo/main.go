// Command demo sends the same burst of traffic through the six algorithms on the in-memory
// store and prints, slot by slot, how many requests each let through.
//
//	go run ./examples/demo
//	go run ./examples/demo -limit "10/s burst 5" -rps 40 -duration 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var algorithms = []ratelimit.Algorithm{
	ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
	ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA,
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	limitFlag := fs.String("limit", "10/s burst 5", "the limit, as ParseLimit reads it")
	rps := fs.Int("rps", 40, "requests per second the client sends")
	duration := fs.Duration("duration", 2*time.Second, "how long the client sends")
	slot := fs.Duration("slot", 250*time.Millisecond, "the width of one column of the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	limit, err := ratelimit.ParseLimit(*limitFlag)
	if err != nil {
		return err
	}
	if *rps <= 0 || *duration <= 0 || *slot <= 0 {
		return fmt.Errorf("-rps, -duration and -slot must be positive")
	}

	store := memorystore.New(nil)
	defer store.Close()
	limiters := make([]*ratelimit.Limiter, len(algorithms))
	for i, alg := range algorithms {
		limiters[i] = ratelimit.New(store, alg, limit)
	}
	slots := int((*duration + *slot - 1) / *slot)
	passed := make([][]int, len(algorithms))
	for i := range passed {
		passed[i] = make([]int, slots)
	}

	fmt.Fprintf(stdout, "limit %v, client sending %d requests/s for %v; requests allowed per %v:\n\n", limit, *rps, *duration, *slot)
	interval := time.Second / time.Duration(*rps)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	start := time.Now()
	for sent := 0; ; sent++ {
		elapsed := time.Since(start)
		if elapsed >= *duration {
			break
		}
		col := min(int(elapsed / *slot), slots-1)
		for i, lim := range limiters {
			r, err := lim.Allow(ctx, "client")
			if err != nil {
				return err
			}
			if r.Allowed {
				passed[i][col]++
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return report(stdout, passed, *slot)
}

func report(w io.Writer, passed [][]int, slot time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s", "algorithm")
	for col := range passed[0] {
		fmt.Fprintf(&b, "%7s", time.Duration(col+1)*slot)
	}
	fmt.Fprintf(&b, "%8s\n", "total")
	for i, row := range passed {
		fmt.Fprintf(&b, "%-24s", algorithms[i])
		total := 0
		for _, n := range row {
			fmt.Fprintf(&b, "%7d", n)
			total += n
		}
		fmt.Fprintf(&b, "%8d\n", total)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
