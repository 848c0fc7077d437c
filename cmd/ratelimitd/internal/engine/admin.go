package engine

import (
	"context"
	"fmt"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// Inspect returns the state of the descriptor entries in domain without taking anything:
// the Status a request with hits_addend 0 would get. Status.Rule is nil when no rule
// applies.
func (e *Engine) Inspect(ctx context.Context, domain string, entries []rules.Entry) (Status, error) {
	req := Request{Domain: domain, Descriptors: []Descriptor{{Entries: entries, HasHits: true}}}
	if err := validate(&req); err != nil {
		return Status{}, err
	}
	p := newPlan(e.rules.Load(), &req, e.storeOf)
	if err := e.run(ctx, &p); err != nil {
		return Status{}, err
	}
	return p.statuses[0], nil
}

// Reset forgets the state the rule matching entries in domain keeps for them. It reports
// whether a rule with state matched.
func (e *Engine) Reset(ctx context.Context, domain string, entries []rules.Entry) (bool, error) {
	req := Request{Domain: domain, Descriptors: []Descriptor{{Entries: entries, HasHits: true}}}
	if err := validate(&req); err != nil {
		return false, err
	}
	shared := make([]string, len(entries))
	r := e.rules.Load().Match(domain, entries, shared)
	if r == nil || r.Unlimited || r.Limit.Rate == 0 {
		return false, nil
	}
	store := e.store
	if st := e.storeOf(r); st != nil {
		store = st
	}
	if err := store.Reset(ctx, storeKey(domain, entries, shared), r.Algorithm); err != nil {
		return false, fmt.Errorf("reset %s: %w", r.ID, err)
	}
	return true, nil
}
