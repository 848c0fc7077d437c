package grpclimit

import (
	"math"
	"strconv"
	"time"

	"github.com/go-ratelimit/ratelimit"
	"google.golang.org/grpc/metadata"
)

// The metadata keys the interceptors send; see the package documentation.
const (
	MetadataLimit      = "ratelimit-limit"     // the capacity, in units
	MetadataRemaining  = "ratelimit-remaining" // the units left after the call
	MetadataReset      = "ratelimit-reset"     // seconds, rounded up, until full capacity
	MetadataPolicy     = "ratelimit-policy"    // IETF structured field: "name";q=<quota>;w=<window seconds>
	MetadataRateLimit  = "ratelimit"           // IETF structured field: "name";r=<remaining>;t=<reset seconds>
	MetadataRetryAfter = "retry-after"         // denials only: seconds, rounded up, before retrying
)

// metadata returns the rate-limit metadata of rule r's result res, or nil when none is
// to be sent.
func (c *compiled) metadata(r *crule, res ratelimit.Result, denied bool) metadata.MD {
	if c.headers == HeadersNone && !denied {
		return nil
	}
	md := make(metadata.MD, 6)
	if denied {
		md[MetadataRetryAfter] = []string{strconv.FormatInt(ceilSeconds(res.RetryAfter), 10)}
	}
	if c.headers == HeadersNone {
		return md
	}
	capacity := res.Limit.Burst
	if capacity <= 0 {
		capacity = res.Limit.Rate
	}
	remaining := strconv.Itoa(res.Remaining)
	reset := strconv.FormatInt(ceilSeconds(res.ResetAfter), 10)
	if c.headers == HeadersAll || c.headers == HeadersCommon {
		md[MetadataLimit] = []string{strconv.Itoa(capacity)}
		md[MetadataRemaining] = []string{remaining}
		md[MetadataReset] = []string{reset}
	}
	if c.headers == HeadersAll || c.headers == HeadersIETF {
		q, w := quotaWindow(res.Limit)
		md[MetadataPolicy] = []string{r.quoted + ";q=" + strconv.Itoa(q) + ";w=" + strconv.FormatInt(w, 10)}
		md[MetadataRateLimit] = []string{r.quoted + ";r=" + remaining + ";t=" + reset}
	}
	return md
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// quotaWindow expresses a limit as a quota per window of whole seconds, as the IETF
// fields want: Rate per Period when Period is whole seconds; otherwise a window of Period
// rounded up to whole seconds and the quota that fits in it, rounded down, at least 1.
func quotaWindow(l ratelimit.Limit) (quota int, window int64) {
	if l.Period <= 0 {
		return l.Rate, 0
	}
	if l.Period%time.Second == 0 {
		return l.Rate, int64(l.Period / time.Second)
	}
	window = ceilSeconds(l.Period)
	q := math.Floor(float64(l.Rate) * float64(window) * float64(time.Second) / float64(l.Period))
	return int(max(1, min(q, math.MaxInt32))), window
}
