package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"slices"
	"strconv"
)

// The test build of the scripts: each production script preceded by testdata/simclock.lua,
// which reads a simulated instant from one more argument. Production scripts and calls
// carry no such argument.

//go:embed testdata/simclock.lua
var simClock string

// simulated maps each production script to its test build.
var simulated = func() map[*script]*script {
	m := map[*script]*script{batch: newScript(simClock + "\n" + batch.src)}
	for _, sc := range scripts[1:] {
		m[sc] = newScript(simClock + "\n" + sc.src)
	}
	return m
}()

type instantKey struct{}

// atInstant returns ctx carrying a simulated instant in microseconds since the Unix epoch,
// at which a store made by simulate decides.
func atInstant(ctx context.Context, us int64) context.Context {
	return context.WithValue(ctx, instantKey{}, us)
}

// simulate makes s run the test build of the scripts, at the instant of each call's
// context (atInstant). It replaces s's backend, so it is called before s is used; the
// store then no longer knows its client's kind (Cluster checks of TakeAll are left to the
// server).
func simulate(s *Store) *Store {
	s.backend = simBackend{s.backend}
	return s
}

// simBackend runs the test build of each script, sending the context's instant last.
type simBackend struct{ backend }

func (b simBackend) eval(ctx context.Context, sc *script, keys, args []string, _ []any, want int) ([]int64, error) {
	now, ok := ctx.Value(instantKey{}).(int64)
	if !ok {
		return nil, errors.New("simulated store called without an instant")
	}
	test, ok := simulated[sc]
	if !ok {
		return nil, errors.New("no test build of the script")
	}
	return b.backend.eval(ctx, test, keys, append(slices.Clip(args), strconv.FormatInt(now, 10)), nil, want)
}
