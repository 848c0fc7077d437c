package storetest

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// testErrors checks the errors: invalid arguments, ended contexts, a closed store. Each
// call that fails must leave the key as it was.
func (s *suite) testErrors(t *testing.T) {
	valid := ratelimit.Limit{Rate: 5, Period: countPeriod, Burst: 3}

	// untouched checks that key is still fresh under alg.
	untouched := func(t *testing.T, st ratelimit.Store, key string, alg ratelimit.Algorithm) {
		t.Helper()
		s.probe(t, st, key, alg, valid).expect(0, true, capacity(alg, valid))
	}
	wantErr := func(t *testing.T, what string, err, target error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Errorf("%s = %v, want an error matching %v", what, errText(err), target)
		}
	}

	for _, alg := range algorithms {
		s.run(t, "InvalidLimit/"+alg.String(), func(t *testing.T, st ratelimit.Store) {
			limits := []ratelimit.Limit{
				{Rate: 0, Period: time.Second},
				{Rate: -1, Period: time.Second},
				{Rate: math.MinInt, Period: time.Second},
				{Rate: 1, Period: 0},
				{Rate: 1, Period: -time.Second},
				{Rate: 1, Period: time.Second, Burst: -1},
				{Rate: 1, Period: math.MaxInt64}, // takes about 292 years to refill
				{},
			}
			if isBucket(alg) {
				limits = append(limits, ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: math.MaxInt})
			}
			for _, l := range limits {
				for _, n := range []int{0, 1} {
					_, err := st.Take(context.Background(), "k", alg, l, n)
					wantErr(t, "Take(k, "+itoa(n)+") at "+l.String(), err, ratelimit.ErrInvalidLimit)
				}
			}
			untouched(t, st, "k", alg)
		})

		s.run(t, "InvalidCost/"+alg.String(), func(t *testing.T, st ratelimit.Store) {
			s.room(countPeriod, countRoom)
			c := capacity(alg, valid)
			for _, n := range []int{-1, math.MinInt, c + 1, math.MaxInt} {
				_, err := st.Take(context.Background(), "k", alg, valid, n)
				wantErr(t, "Take(k, "+itoa(n)+") at "+valid.String(), err, ratelimit.ErrInvalidCost)
			}
			untouched(t, st, "k", alg)
			p := s.probe(t, st, "k", alg, valid)
			p.expect(1, true, c-1)
			// The capacity bounds n, not what remains: n ≤ capacity is a denial.
			p.expect(c, false, c-1)
			_, err := st.Take(context.Background(), "k", alg, valid, c+1)
			wantErr(t, "Take(k, "+itoa(c+1)+") at "+valid.String(), err, ratelimit.ErrInvalidCost)
			p.expect(0, true, c-1)
		})
	}

	s.run(t, "InvalidAlgorithm", func(t *testing.T, st ratelimit.Store) {
		for _, alg := range []ratelimit.Algorithm{0, ratelimit.GCRA + 1, 99, math.MaxUint8} {
			_, err := st.Take(context.Background(), "k", alg, valid, 1)
			wantErr(t, "Take(k, 1) under "+alg.String(), err, ratelimit.ErrInvalidAlgorithm)
			err = st.Reset(context.Background(), "k", alg)
			wantErr(t, "Reset(k) under "+alg.String(), err, ratelimit.ErrInvalidAlgorithm)
		}
		for _, alg := range algorithms {
			untouched(t, st, "k", alg)
		}
	})

	s.run(t, "InvalidKey", func(t *testing.T, st ratelimit.Store) {
		for _, key := range []string{"", strings.Repeat("k", ratelimit.MaxKeyLen+1), strings.Repeat("\x00", 1<<20)} {
			for _, alg := range algorithms {
				_, err := st.Take(context.Background(), key, alg, valid, 1)
				wantErr(t, alg.String()+": Take("+quoteKey(key)+", 1)", err, ratelimit.ErrInvalidKey)
				err = st.Reset(context.Background(), key, alg)
				wantErr(t, alg.String()+": Reset("+quoteKey(key)+")", err, ratelimit.ErrInvalidKey)
			}
		}
		// The longest key is valid, and not confused with the too-long one's prefix.
		s.room(countPeriod, countRoom)
		key := strings.Repeat("k", ratelimit.MaxKeyLen)
		for _, alg := range algorithms {
			untouched(t, st, key, alg)
		}
	})

	s.run(t, "EndedContext", func(t *testing.T, st ratelimit.Store) {
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel2()
		for _, c := range []struct {
			ctx  context.Context
			want error
		}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			for _, alg := range algorithms {
				for _, n := range []int{0, 1} {
					_, err := st.Take(c.ctx, "k", alg, valid, n)
					wantErr(t, alg.String()+": Take(k, "+itoa(n)+") with an ended context", err, c.want)
				}
				err := st.Reset(c.ctx, "k", alg)
				wantErr(t, alg.String()+": Reset(k) with an ended context", err, c.want)
			}
		}
		for _, alg := range algorithms {
			untouched(t, st, "k", alg)
		}
	})

	s.run(t, "Closed", func(t *testing.T, st ratelimit.Store) {
		c, ok := st.(io.Closer)
		if !ok {
			t.Skip("the store has no Close method")
		}
		for _, alg := range algorithms {
			s.probe(t, st, "k", alg, valid).expect(1, true, capacity(alg, valid)-1)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close() = %v, want nil", err)
		}
		for _, alg := range algorithms {
			_, err := st.Take(context.Background(), "k", alg, valid, 1)
			wantErr(t, alg.String()+": Take(k, 1) after Close", err, ratelimit.ErrClosed)
			err = st.Reset(context.Background(), "k", alg)
			wantErr(t, alg.String()+": Reset(k) after Close", err, ratelimit.ErrClosed)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil: Close is idempotent", err)
		}
	})
}
