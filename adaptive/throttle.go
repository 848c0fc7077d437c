package adaptive

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrThrottled is returned for a request a [Throttle] rejected locally, without sending
// it.
var ErrThrottled = errors.New("adaptive: throttled: the backend has been rejecting requests")

// Throttle is client-side adaptive throttling, as the Google SRE book describes it
// ("Handling Overload"): the client counts, over a sliding window, the requests its
// application attempted and those the backend accepted, and rejects each new request
// locally with probability
//
//	p = max(0, (requests − K × accepts) / (requests + 1))
//
// While the backend accepts everything p is 0. When it accepts less than 1/K of the
// attempts, the client sends about K × accepts requests per window and rejects the rest
// without a round trip, so a backend refusing most calls is not also flooded by them;
// as it accepts more, p falls back to 0 by itself. The request count includes requests
// rejected locally, so p rises with the application's demand.
//
// The zero value is usable. A Throttle is safe for concurrent use; its fields must not
// change once in use.
type Throttle struct {
	// K is the multiplier of accepted requests the client may send: 2 sends up to
	// twice what the backend accepts (the book's recommendation); lower is more
	// aggressive. At least 1; default 2.
	K float64

	// Window is the length of the sliding window. Default 2 minutes, the book's.
	Window time.Duration

	mu      sync.Mutex
	epoch   time.Time
	buckets [throttleBuckets]throttleBucket
}

const throttleBuckets = 20

type throttleBucket struct {
	index              int64 // which bucket of time it counts; counts are stale when it is old
	requests, accepted int64
}

const defaultThrottleWindow = 2 * time.Minute

// Allow counts an attempted request and reports whether to send it: false means reject
// it locally ([ErrThrottled]). Report each request sent and accepted by the backend with
// [Throttle.Accepted].
func (t *Throttle) Allow() bool {
	t.mu.Lock()
	b := t.bucket()
	requests, accepted := t.counts(b.index)
	b.requests++
	t.mu.Unlock()
	p := (float64(requests) - t.k()*float64(accepted)) / float64(requests+1)
	return p <= 0 || rand.Float64() >= p
}

// Accepted records that the backend accepted a request that [Throttle.Allow] let
// through.
func (t *Throttle) Accepted() {
	t.mu.Lock()
	t.bucket().accepted++
	t.mu.Unlock()
}

// RejectProbability returns the probability with which the next request would be
// rejected locally.
func (t *Throttle) RejectProbability() float64 {
	t.mu.Lock()
	b := t.bucket()
	requests, accepted := t.counts(b.index)
	t.mu.Unlock()
	return max(0, (float64(requests)-t.k()*float64(accepted))/float64(requests+1))
}

func (t *Throttle) k() float64 {
	if t.K >= 1 {
		return t.K
	}
	return 2
}

// bucket returns the bucket of now, cleared if it held an older period. t.mu is held.
func (t *Throttle) bucket() *throttleBucket {
	if t.epoch.IsZero() {
		t.epoch = time.Now()
	}
	w := t.Window
	if w <= 0 {
		w = defaultThrottleWindow
	}
	index := int64(time.Since(t.epoch) / max(w/throttleBuckets, 1))
	b := &t.buckets[index%throttleBuckets]
	if b.index != index {
		*b = throttleBucket{index: index}
	}
	return b
}

// counts sums the buckets of the window ending in the bucket of the given index. t.mu is
// held.
func (t *Throttle) counts(index int64) (requests, accepted int64) {
	for i := range t.buckets {
		if c := &t.buckets[i]; c.index > index-throttleBuckets {
			requests += c.requests
			accepted += c.accepted
		}
	}
	return requests, accepted
}
