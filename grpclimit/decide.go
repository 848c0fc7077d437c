package grpclimit

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ratelimit/ratelimit/httplimit"
	"github.com/go-ratelimit/ratelimit/internal/errwrap"
	"github.com/go-ratelimit/ratelimit/internal/multi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// check decides a unary call or a stream's opening.
func (c *compiled) check(ctx context.Context, method string, req any, ph phase) (verdict, error) {
	s := c.pool.Get().(*scratch)
	defer func() {
		s.reset()
		c.pool.Put(s)
	}()
	if err := c.collect(ctx, method, ph, s); err != nil {
		return verdict{}, err
	}
	if len(s.es) == 0 {
		return verdict{}, nil
	}
	return c.take(ctx, method, req, s, true)
}

// collect appends to s the rules of phase ph that apply to method, in rule order, with
// their keys. It fails with codes.InvalidArgument when a rule finds no key and its
// MissingKeyPolicy rejects the call.
func (c *compiled) collect(ctx context.Context, method string, ph phase, s *scratch) error {
	set, _ := c.match(method)
	if set.exclude {
		return nil
	}
	// Merge two ascending lists of rule indices.
	a, b := c.always, set.rules
	for len(a) > 0 || len(b) > 0 {
		var i int
		if len(b) == 0 || len(a) > 0 && a[0] < b[0] {
			i, a = a[0], a[1:]
		} else {
			i, b = b[0], b[1:]
		}
		r := &c.rules[i]
		if (ph == phaseOpen && r.perMessage) || (ph == phaseMessage && !r.perMessage) {
			continue
		}
		if err := c.add(ctx, method, r, s); err != nil {
			return err
		}
	}
	return nil
}

// add appends r and its key for the call to s, unless r's MissingKeyPolicy skips it.
func (c *compiled) add(ctx context.Context, method string, r *crule, s *scratch) error {
	key, missing := c.key(ctx, method, r)
	if missing != nil {
		if r.missing == MissingKeySkip {
			return nil
		}
		err := errwrap.Op("grpclimit", fmt.Sprintf("rule %q", r.rule.Name), missing)
		if c.onError != nil {
			c.onError(ctx, method, err)
		}
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.rules = append(s.rules, r)
	s.es = append(s.es, multi.Entry{Rule: r.rule, Key: key})
	return nil
}

// key returns the namespaced key of rule r for the call, or why it has none.
func (c *compiled) key(ctx context.Context, method string, r *crule) (string, error) {
	if r.key == nil {
		key, err := c.ip.key(ctx, r.rule.Prefix)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoKey, err)
		}
		return key, nil
	}
	var missing error
	switch k, err := r.key(ctx, method); {
	case err != nil && errors.Is(err, ErrNoKey):
		missing = err
	case err != nil:
		missing = fmt.Errorf("%w: %w", ErrNoKey, err)
	case k == "":
		missing = ErrNoKey
	case len(k) > multi.MaxKeyLen:
		missing = fmt.Errorf("%w: key of %d bytes, more than %d", ErrNoKey, len(k), multi.MaxKeyLen)
	default:
		return r.rule.Prefix + k, nil
	}
	if r.missing != MissingKeyFallback {
		return "", missing
	}
	key, err := c.ip.key(ctx, r.rule.FallbackPrefix)
	if err != nil {
		return "", fmt.Errorf("%w, and no client address to fall back on: %w", missing, err)
	}
	return key, nil
}

// take decides the entries collected in s for one call or message, at the costs the
// rules give req. The verdict carries metadata for a denial, and for an allowed call
// when allowedMD is set.
func (c *compiled) take(ctx context.Context, method string, req any, s *scratch, allowedMD bool) (verdict, error) {
	for i, r := range s.rules {
		e := &s.es[i]
		e.N = 1
		if r.cost != nil {
			e.N = r.cost(ctx, method, req)
		}
		if o, refused := c.set.Prepare(e); refused {
			return verdict{}, c.refused(ctx, method, o)
		}
	}
	o := c.set.Decide(ctx, s.es)
	if o.Err != nil {
		if err := ctx.Err(); err != nil {
			return verdict{}, status.FromContextError(err).Err()
		}
		if c.onError != nil {
			c.onError(ctx, method, fmt.Errorf("grpclimit: %w", o.Err))
		}
	}
	switch o.Verdict {
	case multi.Limited:
		lim := &s.es[o.Limiting]
		return verdict{md: c.metadata(s.es, o.Limiting, true)}, denied(lim.Rule, lim.Result)
	case multi.Unavailable:
		return verdict{}, status.Error(codes.Unavailable, "grpclimit: the rate limiter is unavailable")
	}
	if o.Limiting < 0 || c.headers == httplimit.HeadersNone || !allowedMD {
		return verdict{}, nil
	}
	return verdict{md: c.metadata(s.es, o.Limiting, false)}, nil
}

// refused returns the status of a call refused for its cost, after reporting it.
func (c *compiled) refused(ctx context.Context, method string, o multi.Outcome) error {
	switch o.Verdict {
	case multi.TooCostly:
		return tooCostly(o.Rule, o.Err)
	case multi.BadCost:
		err := fmt.Errorf("%w: %w", ErrConfig, o.Err)
		if c.onError != nil {
			c.onError(ctx, method, err)
		}
		return status.Error(codes.Internal, "grpclimit: invalid configuration")
	}
	// Unavailable: a limit made invalid at run time, under FailClosed.
	if c.onError != nil {
		c.onError(ctx, method, fmt.Errorf("grpclimit: %w", o.Err))
	}
	return status.Error(codes.Unavailable, "grpclimit: the rate limiter is unavailable")
}
