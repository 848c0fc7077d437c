package ratelimit

import "context"

// Do runs fn if one unit of key is allowed now, and returns fn's error. When the limiter
// denies the call, fn does not run and Do returns a *[LimitedError], which matches
// [ErrLimited] and carries the Result. A store error is returned as is.
func (l *Limiter) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	r, err := l.Allow(ctx, key)
	if err != nil {
		return err
	}
	if !r.Allowed {
		return &LimitedError{Key: key, Result: r}
	}
	return fn(ctx)
}

// Wrap returns fn guarded by l: each call takes one unit of the key that key computes from
// the argument, and runs fn only if it is allowed. A denied call returns the zero R and a
// *[LimitedError] matching [ErrLimited]. It is the counterpart of a rate-limit decorator:
//
//	fetch := ratelimit.Wrap(lim, func(user string) string { return "user:" + user }, fetchProfile)
//	profile, err := fetch(ctx, "alice")
func Wrap[A, R any](l *Limiter, key func(A) string, fn func(context.Context, A) (R, error)) func(context.Context, A) (R, error) {
	return func(ctx context.Context, arg A) (R, error) {
		var out R
		err := l.Do(ctx, key(arg), func(ctx context.Context) error {
			var err error
			out, err = fn(ctx, arg)
			return err
		})
		return out, err
	}
}
