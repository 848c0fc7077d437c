package ratelimit

import (
	"context"
	"errors"
	"fmt"
)

// Request is one limit of a decision on several limits at once: N units of Key under
// Algorithm and Limit.
type Request struct {
	Key       string
	Algorithm Algorithm
	Limit     Limit
	N         int
}

// BatchStore is a Store that can decide several limits atomically. Stores implement it
// when they can; [TakeAll] uses it.
type BatchStore interface {
	Store

	// TakeAll takes the units of every request if each allows them, and none otherwise, as
	// one atomic step. results must have the length of reqs; results[i] reports reqs[i] as
	// [Store.Take] would, except that when the batch is denied nothing is taken, so the
	// requests that would have passed report what is available now. The same (key,
	// algorithm) may not appear twice: it is an error wrapping [ErrInvalidKey].
	TakeAll(ctx context.Context, reqs []Request, results []Result) (allowed bool, err error)
}

// TakeAll takes the units of every request if each allows them, and none otherwise, as one
// atomic step: a request denied by one limit consumes nothing from the others. results must
// have the length of reqs and receives one Result per request (see [BatchStore.TakeAll]).
// The store must be a [BatchStore], as the stores of this module are; with any other,
// TakeAll returns an error matching [errors.ErrUnsupported].
func TakeAll(ctx context.Context, store Store, reqs []Request, results []Result) (bool, error) {
	if len(results) != len(reqs) {
		return false, fmt.Errorf("ratelimit: TakeAll: %d results for %d requests", len(results), len(reqs))
	}
	bs, ok := store.(BatchStore)
	if !ok {
		return false, fmt.Errorf("ratelimit: TakeAll: %T cannot decide several limits atomically: %w", store, errors.ErrUnsupported)
	}
	return bs.TakeAll(ctx, reqs, results)
}
