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
	"syscall"
)

func main() {
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
