package engine

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// storeOf returns the store of rule r's hits: nil for the Engine's own.
func (e *Engine) storeOf(r *rules.Rule) ratelimit.Store {
	if e.route == nil {
		return nil
	}
	return e.route(r)
}

// addStore records st, the store of the request g is adding (nil for the Engine's).
func (g *group) addStore(st ratelimit.Store, capacity int) {
	if st != nil && g.stores == nil {
		g.stores = make([]ratelimit.Store, len(g.reqs), capacity)
	}
	if g.stores != nil {
		g.stores = append(g.stores, st)
	}
}

// storeFor returns the store that decides g: the Engine's, the one store every request of
// g is routed to, or, when they are routed to several, a store that passes each request
// to its own. Several stores cannot decide together: multi.TakeAll then checks every
// limit and takes each in turn, as for keys a Redis Cluster cannot decide in one script.
func (e *Engine) storeFor(g *group) ratelimit.Store {
	if g.stores == nil {
		return e.store
	}
	one := g.stores[0]
	for _, st := range g.stores[1:] {
		if st != one {
			return routed{e.store, g}
		}
	}
	if one == nil {
		return e.store
	}
	return one
}

// routed passes each request of a group to its own store. It is not a BatchStore.
type routed struct {
	def ratelimit.Store
	g   *group
}

func (r routed) Take(ctx context.Context, key string, alg ratelimit.Algorithm, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	for j, q := range r.g.reqs {
		if q.Key == key && q.Algorithm == alg && q.Limit == limit {
			if st := r.g.stores[j]; st != nil {
				return st.Take(ctx, key, alg, limit, n)
			}
			return r.def.Take(ctx, key, alg, limit, n)
		}
	}
	return ratelimit.Result{}, fmt.Errorf("engine: no store for key %q", key) // every request of the group is listed
}

func (r routed) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	return fmt.Errorf("engine: a decision never resets key %q", key)
}
