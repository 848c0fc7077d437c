package rowstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/internal/failover"
)

// Sweeper deletes a store's expired rows: every Every, it runs Delete, which deletes at
// most Batch expired rows in one statement and returns how many it deleted, until a run
// deletes fewer. Each statement runs under the guard's per-call timeout; a failure ends
// the sweep (reported unless it timed out) and the next one tries again, while expired
// rows decide as no row would.
type Sweeper struct {
	Name   string // the store's, for errors
	Every  time.Duration
	Batch  int
	Guard  *failover.Guard
	Delete func(ctx context.Context, batch int) (int64, error)
}

// Run sweeps until done is closed.
func (s *Sweeper) Run(done <-chan struct{}) {
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.sweep(done)
		}
	}
}

func (s *Sweeper) sweep(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		default:
		}
		ctx, cancel := s.Guard.Context(context.Background())
		n, err := s.Delete(ctx, s.Batch)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				s.Guard.Report(fmt.Errorf("%s: sweep: %w", s.Name, err))
			}
			return
		}
		if n < int64(s.Batch) {
			return
		}
	}
}

// ValidateReset checks the arguments of a Reset as every store does.
func ValidateReset(key string, alg ratelimit.Algorithm) error {
	if err := ratelimit.CheckKey(key); err != nil {
		return err
	}
	if !alg.Valid() {
		return fmt.Errorf("%w: %v", ratelimit.ErrInvalidAlgorithm, alg)
	}
	return nil
}

// ValidTable reports whether name is a plain SQL identifier the stores accept as a table
// name: letters, digits and underscores, not starting with a digit, at most 48 bytes.
func ValidTable(name string) bool {
	for i, c := range name {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return name != "" && len(name) <= 48
}
