package ratelimit

import (
	"context"
	"fmt"
)

// MaxKeyLen is the longest key, in bytes, that stores accept. Keys may hold any bytes.
const MaxKeyLen = 64 << 10

// CheckKey returns an error wrapping [ErrInvalidKey] if key is empty or longer than
// [MaxKeyLen]. Stores call it; it is exported for stores written outside this module.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return nil
}

// Store keeps the state of many keys and makes decisions on it atomically. Implementations
// are safe for concurrent use. State is kept per (key, algorithm).
//
// The memorystore package holds the in-memory Store, the embedded default; the redisstore
// package shares state between processes through Redis. Both make the same decisions.
type Store interface {
	// Take decides whether n units of key under alg and limit can pass now, takes them if
	// so, and reports the outcome. n == 0 reports without taking. Being denied is a Result
	// with Allowed false, never an error. Errors wrap ErrInvalidLimit, ErrInvalidCost,
	// ErrInvalidAlgorithm, ErrInvalidKey, ErrClosed, the context's error, or the backend's failure.
	Take(ctx context.Context, key string, alg Algorithm, limit Limit, n int) (Result, error)

	// Reset forgets the state of key under alg: the key is back to full capacity.
	Reset(ctx context.Context, key string, alg Algorithm) error
}

// CompilingStore is a Store that can validate and convert a limit once, ahead of the
// decisions made under it. A [Limiter] whose store implements it compiles its limit when
// created and at each [Limiter.SetLimit], so that its calls skip that step. The memory
// store implements it.
type CompilingStore interface {
	Store

	// Compile returns alg and limit ready to decide under. It fails, with an error wrapping
	// ErrInvalidAlgorithm or ErrInvalidLimit, where Take under them would.
	Compile(alg Algorithm, limit Limit) (CompiledLimit, error)
}

// CompiledLimit is an algorithm and a limit compiled by a [CompilingStore]. It is safe for
// concurrent use.
type CompiledLimit interface {
	// Take is the store's Take under the compiled algorithm and limit.
	Take(ctx context.Context, key string, n int) (Result, error)
}
