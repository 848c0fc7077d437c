package bench

import (
	"context"
	"testing"
	"time"
)

// TestAdaptersLimit checks that every adapter enforces its limit: with 5 per hour, a key
// passes 5 calls and the 6th is denied, while another key is still allowed.
func TestAdaptersLimit(t *testing.T) {
	ctx := context.Background()
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) {
			in, err := a.open(5, time.Hour)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer in.close()
			allow := in.allow
			for i := 1; i <= 6; i++ {
				got, err := allow(ctx, "user:1")
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if want := i <= 5; got != want {
					t.Fatalf("call %d: allowed = %v, want %v", i, got, want)
				}
			}
			if got, err := allow(ctx, "user:2"); err != nil || !got {
				t.Fatalf("other key: allowed = %v, %v; want true, nil", got, err)
			}
		})
	}
}

// TestAdaptersHugeLimit checks that the limit of the speed benchmarks denies nothing.
func TestAdaptersHugeLimit(t *testing.T) {
	ctx := context.Background()
	for _, a := range adapters {
		t.Run(a.name, func(t *testing.T) {
			in, err := a.open(hugeBurst, hugePeriod)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer in.close()
			allow := in.allow
			for i := range 100_000 {
				got, err := allow(ctx, key(i%100))
				if err != nil || !got {
					t.Fatalf("call %d: allowed = %v, %v; want true, nil", i, got, err)
				}
			}
		})
	}
}
