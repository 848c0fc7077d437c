package ratelimit

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/go-ratelimit/ratelimit/internal/errwrap"
)

// Limit is a rate: Rate events per Period, with an optional Burst.
//
// The zero Limit is invalid; calls made with it return an error wrapping [ErrInvalidLimit].
type Limit struct {
	// Rate is the number of units allowed per Period. It must be > 0.
	Rate int

	// Period is the length of the window, or the time a bucket needs to refill Rate units.
	// It must be > 0. Windows are aligned to the Unix epoch.
	Period time.Duration

	// Burst is the capacity of TokenBucket, LeakyBucket and GCRA: the most units that can
	// pass at one instant after the key has been idle. 0 means Rate. Window algorithms
	// ignore it. It must be ≥ 0.
	Burst int
}

// maxFill bounds the time a key needs to go from empty to full capacity, Burst·Period/Rate,
// so that every instant and duration the algorithms compute fits in an int64 of nanoseconds.
const maxFill = time.Duration(1 << 62) // about 146 years

// PerSecond returns a Limit of rate units per second.
func PerSecond(rate int) Limit { return Limit{Rate: rate, Period: time.Second} }

// PerMinute returns a Limit of rate units per minute.
func PerMinute(rate int) Limit { return Limit{Rate: rate, Period: time.Minute} }

// PerHour returns a Limit of rate units per hour.
func PerHour(rate int) Limit { return Limit{Rate: rate, Period: time.Hour} }

// Capacity returns the most units alg lets pass at one instant under l: Burst (or Rate when
// Burst is 0) for the bucket algorithms, Rate for the window algorithms. It does not
// validate l.
func (l Limit) Capacity(alg Algorithm) int {
	if alg.isBucket() && l.Burst > 0 {
		return l.Burst
	}
	return l.Rate
}

// Validate reports whether l is usable. The error wraps [ErrInvalidLimit] and says why.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("%w: rate %d must be positive", ErrInvalidLimit, l.Rate)
	case l.Period <= 0:
		return fmt.Errorf("%w: period %v must be positive", ErrInvalidLimit, l.Period)
	case l.Burst < 0:
		return fmt.Errorf("%w: burst %d must not be negative", ErrInvalidLimit, l.Burst)
	}
	capacity := uint64(max(l.Rate, l.Burst))
	// capacity·Period ≤ Rate·maxFill, in 128 bits.
	hi, lo := bits.Mul64(capacity, uint64(l.Period))
	mhi, mlo := bits.Mul64(uint64(l.Rate), uint64(maxFill))
	if hi > mhi || hi == mhi && lo > mlo {
		return fmt.Errorf("%w: %v: refilling %d units takes longer than %v", ErrInvalidLimit, l, capacity, maxFill)
	}
	return nil
}

// String returns l in the form [ParseLimit] reads back to the same value: "10/s",
// "100/m", "1000/h", "5/d", "5/30s", "50/1h30m0s", with " burst 20" appended when Burst is
// set.
func (l Limit) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(l.Rate))
	b.WriteByte('/')
	switch l.Period {
	case time.Second:
		b.WriteString("s")
	case time.Minute:
		b.WriteString("m")
	case time.Hour:
		b.WriteString("h")
	case 24 * time.Hour:
		b.WriteString("d")
	default:
		b.WriteString(l.Period.String())
	}
	if l.Burst != 0 {
		b.WriteString(" burst ")
		b.WriteString(strconv.Itoa(l.Burst))
	}
	return b.String()
}

// units maps the period words ParseLimit accepts, in lower case, to their length.
var units = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// ParseLimit parses a limit written as "<rate>/<period>" or "<rate> per <period>", with an
// optional " burst <n>". The period is a unit (s, sec, second, m, min, minute, h, hr, hour,
// d, day, plurals allowed, any case), a count and a unit ("30 seconds", "2h"), or a Go
// duration ("30s", "1h30m"). Examples: "10/s", "100/minute", "5/30s", "1000 per hour",
// "50/1h30m", "10/s burst 20". The result is validated as by [Limit.Validate].
func ParseLimit(s string) (Limit, error) {
	l, err := parseLimit(s)
	if err == nil {
		err = l.Validate()
	}
	if err != nil {
		return Limit{}, errwrap.Op("ratelimit", fmt.Sprintf("parse limit %q", s), err)
	}
	return l, nil
}

func parseLimit(s string) (Limit, error) {
	fields := strings.Fields(s)
	var l Limit
	// Split off " burst <n>".
	if k := len(fields); k >= 2 && strings.EqualFold(fields[k-2], "burst") {
		burst, err := parseCount(fields[k-1])
		if err != nil {
			return l, fmt.Errorf("burst: %w", err)
		}
		l.Burst = burst
		fields = fields[:k-2]
	}
	var rate, period string
	switch {
	case len(fields) >= 3 && strings.EqualFold(fields[1], "per"):
		rate, period = fields[0], strings.Join(fields[2:], " ")
	case strings.Contains(strings.Join(fields, " "), "/"):
		rate, period, _ = strings.Cut(strings.Join(fields, " "), "/")
	default:
		return l, fmt.Errorf("want <rate>/<period> or <rate> per <period>")
	}
	var err error
	if l.Rate, err = parseCount(strings.TrimSpace(rate)); err != nil {
		return l, fmt.Errorf("rate: %w", err)
	}
	if l.Period, err = parsePeriod(strings.TrimSpace(period)); err != nil {
		return l, fmt.Errorf("period: %w", err)
	}
	return l, nil
}

// parseCount parses a non-negative decimal integer without sign.
func parseCount(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// parsePeriod parses "s", "minute", "30 seconds", "2h" or a Go duration such as "1h30m".
func parsePeriod(s string) (time.Duration, error) {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	count, word := s[:digits], strings.ToLower(strings.TrimSpace(s[digits:]))
	if unit, ok := units[word]; ok {
		k := 1
		if count != "" {
			var err error
			if k, err = parseCount(count); err != nil {
				return 0, err
			}
		}
		if k <= 0 || int64(k) > int64(maxFill/unit) {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return time.Duration(k) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a unit nor a duration", s)
	}
	return d, nil
}
