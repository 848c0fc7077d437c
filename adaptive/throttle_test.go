package adaptive

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestThrottleProbability(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := &Throttle{K: 2, Window: 10 * time.Second}
		for range 100 {
			if !th.Allow() {
				t.Fatal("rejected a request while the backend accepts everything")
			}
			th.Accepted()
		}
		if p := th.RejectProbability(); p != 0 {
			t.Fatalf("p = %v with every request accepted, want 0", p)
		}
		// 100 more attempts, none accepted: p = (200 − 2·100) / 201 = 0; 100 more: (300 − 200) / 301.
		for range 200 {
			th.Allow()
		}
		if p, want := th.RejectProbability(), 100.0/301; p < want-1e-9 || p > want+1e-9 {
			t.Fatalf("p = %v, want %v", p, want)
		}
		// The window slides: after 10s everything is forgotten.
		time.Sleep(10 * time.Second)
		if p := th.RejectProbability(); p != 0 {
			t.Fatalf("p = %v after the window passed, want 0", p)
		}
	})
}
