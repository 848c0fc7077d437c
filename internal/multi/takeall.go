package multi

import (
	"context"
	"errors"

	"github.com/go-ratelimit/ratelimit"
)

// TakeAll decides reqs on store all or nothing: one [ratelimit.TakeAll] when the store
// can batch them. A store that cannot (not a [ratelimit.BatchStore], or one answering
// [errors.ErrUnsupported], as a Redis Cluster does for keys on several slots) gets the
// one fallback: every limit is checked without taking, and only if all admit is each
// taken in turn. A decision denied by the check takes nothing; two decisions racing
// between check and take can each take from a limit the other then exceeds, and the
// take that then denies leaves the units of the takes before it taken.
func TakeAll(ctx context.Context, store ratelimit.Store, reqs []ratelimit.Request, res []ratelimit.Result) (bool, error) {
	if _, ok := store.(ratelimit.BatchStore); ok {
		ok, err := ratelimit.TakeAll(ctx, store, reqs, res)
		if !errors.Is(err, errors.ErrUnsupported) {
			return ok, err
		}
	}
	if ok, err := Check(ctx, store, reqs, res); !ok || err != nil {
		return false, err
	}
	ok := true
	for i, r := range reqs {
		var err error
		if res[i], err = store.Take(ctx, r.Key, r.Algorithm, r.Limit, r.N); err != nil {
			return false, err
		}
		if !res[i].Allowed {
			ok = false
			break
		}
	}
	return ok, nil
}

// Check fills res with what each request would get, taking nothing, and reports
// whether all would be admitted. A request is admitted by a check when the store admits
// a cost of 0 and at least its N units remain.
func Check(ctx context.Context, store ratelimit.Store, reqs []ratelimit.Request, res []ratelimit.Result) (bool, error) {
	ok := true
	for i, r := range reqs {
		rs, err := store.Take(ctx, r.Key, r.Algorithm, r.Limit, 0)
		if err != nil {
			return false, err
		}
		if rs.Allowed && rs.Remaining < r.N {
			rs.Allowed = false
		}
		res[i] = rs
		ok = ok && rs.Allowed
	}
	return ok, nil
}
