// Package bench compares the in-memory store of github.com/go-ratelimit/ratelimit with
// other Go rate limiters, side by side, in one process.
//
// It holds only tests and benchmarks; see BENCHMARKS.md at the repository root for the
// results and the commands that reproduce them:
//
//	cd bench && go test -run '^$' -bench . -benchtime 1s -count 6
//
// Every library is configured with a limit so large (1e9 per second, burst 1e9) that no
// call is ever denied, so all of them do the same work; each benchmark reports
// allowed/op, which must be 1. TestAdaptersLimit checks that each library really limits
// with a small limit, so a benchmark cannot silently measure a no-op.
package bench
