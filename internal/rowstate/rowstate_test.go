package rowstate

import (
	"context"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// TestGCRAFloor checks that a GCRA call whose clock reads earlier than its row's last
// write is decided at that write's instant, as it would be had it read the clock after it.
func TestGCRAFloor(t *testing.T) {
	c, err := Validate(context.Background(), "k", ratelimit.GCRA, ratelimit.Limit{Rate: 100, Period: time.Hour}, 1)
	if err != nil {
		t.Fatal(err)
	}
	const t1 = int64(1_700_000_000) * 1e9
	row, write, d, err := Step(c, Row{}, false, t1)
	if err != nil || !write || !d.Allowed || d.Remaining != 99 {
		t.Fatalf("first Step = (write %v, %+v, %v), want an allowed write leaving 99", write, d, err)
	}
	if row.Y != t1 {
		t.Errorf("the first write's y = %d, want its instant %d", row.Y, t1)
	}
	_, _, want, _ := Step(c, row, true, t1)
	for _, early := range []int64{t1 - 1, t1 - int64(time.Minute)} {
		next, write, got, err := Step(c, row, true, early)
		if err != nil || !write || got != want {
			t.Errorf("Step at %d ns before the row's write = (write %v, %+v, %v), want (true, %+v) as at its instant", t1-early, write, got, err, want)
		}
		if next.Y != t1 {
			t.Errorf("Step at %d ns before the row's write wrote y = %d, want the floor %d", t1-early, next.Y, t1)
		}
	}
	if want.Remaining != 98 {
		t.Errorf("second unit left %d, want 98", want.Remaining)
	}
}

// TestClockStepBack checks the SQL stores' promise for a wall clock that steps back: a
// row decided at t1 and read at an instant an hour earlier grants nothing the key had not
// at t1, for every algorithm. Half-used and exhausted keys both.
func TestClockStepBack(t *testing.T) {
	const t1 = int64(1_700_000_000) * 1e9
	l := ratelimit.Limit{Rate: 10, Period: time.Minute}
	for _, alg := range []ratelimit.Algorithm{ratelimit.FixedWindow, ratelimit.SlidingWindowLog, ratelimit.SlidingWindowCounter,
		ratelimit.TokenBucket, ratelimit.LeakyBucket, ratelimit.GCRA} {
		take, err := Validate(context.Background(), "k", alg, l, 1)
		if err != nil {
			t.Fatal(err)
		}
		look := take
		look.Cost = 0
		var row Row
		found := false
		for used := 1; ; used++ {
			next, write, d, err := Step(take, row, found, t1)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed {
				break
			}
			if write {
				row, found = next, true
			}
			if used == 5 {
				for _, back := range []int64{int64(time.Second), int64(time.Hour)} {
					_, _, at, _ := Step(look, row, found, t1)
					_, _, early, _ := Step(look, row, found, t1-back)
					if early.Remaining > at.Remaining {
						t.Errorf("%v, %d used: %v before the last write %d remain, want at most the %d at its instant", alg, used, time.Duration(back), early.Remaining, at.Remaining)
					}
				}
			}
			if used > 100 {
				t.Fatalf("%v allowed more than 100 units of %v at one instant", alg, l)
			}
		}
		for _, back := range []int64{int64(time.Second), int64(time.Hour)} {
			if _, _, d, _ := Step(take, row, found, t1-back); d.Allowed {
				t.Errorf("%v, exhausted at t1: a unit %v earlier = %+v, want denied", alg, time.Duration(back), d)
			}
		}
	}
}
