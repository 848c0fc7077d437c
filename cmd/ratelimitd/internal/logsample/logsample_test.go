package logsample

import (
	"testing"
	"time"
)

func TestSample(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	s := &Sampler{Interval: 10 * time.Second}
	for i, step := range []struct {
		at      time.Duration
		log     bool
		skipped int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{10 * time.Second, false, 0},
		{25 * time.Second, true, 1},
		{60 * time.Second, true, 0},
	} {
		log, skipped := s.Sample(t0.Add(step.at))
		if log != step.log || skipped != step.skipped {
			t.Errorf("step %d: Sample(t0+%v) = %v, %d; want %v, %d", i, step.at, log, skipped, step.log, step.skipped)
		}
	}
}

func TestZeroLogsEverything(t *testing.T) {
	var s Sampler
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if log, skipped := s.Sample(now); !log || skipped != 0 {
			t.Errorf("occurrence %d: %v, %d; want true, 0", i, log, skipped)
		}
	}
}
