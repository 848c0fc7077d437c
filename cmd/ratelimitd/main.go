// Command ratelimitd is a rate limit service: Envoy's rate limit service API (RLS v3) over
// gRPC and an HTTP JSON API, deciding with the rules of envoyproxy/ratelimit's YAML files
// (plus six algorithms and windows of any length) on an in-memory or Redis store.
//
// Run with no flags, it serves built-in example rules from memory. ratelimitd -help lists
// the flags; each has an environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// gcPercent is the garbage collector's target unless GOGC is set. The service's live heap
// is small and steady (the rules, the memory store's tables, the requests in flight) while
// every call allocates in gRPC; collecting at 400% instead of Go's 100% cut the CPU per
// call by a fifth to a quarter in BenchmarkGRPC, at the price of a heap that may grow to
// five times the live data between collections instead of twice.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "ratelimitd:", err)
		stop()
		os.Exit(1)
	}
}
