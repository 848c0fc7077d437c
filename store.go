package ratelimit

import "context"

// Store keeps the state of many keys and makes decisions on it atomically. Implementations
// are safe for concurrent use. State is kept per (key, algorithm).
//
// The memorystore package holds the in-memory Store, the embedded default; the redisstore
// package shares state between processes through Redis. Both make the same decisions.
type Store interface {
	// Take decides whether n units of key under alg and limit can pass now, takes them if
	// so, and reports the outcome. n == 0 reports without taking. Being denied is a Result
	// with Allowed false, never an error. Errors wrap ErrInvalidLimit, ErrInvalidCost,
	// ErrInvalidAlgorithm, ErrClosed, the context's error, or the backend's failure.
	Take(ctx context.Context, key string, alg Algorithm, limit Limit, n int) (Result, error)

	// Reset forgets the state of key under alg: the key is back to full capacity.
	Reset(ctx context.Context, key string, alg Algorithm) error
}
