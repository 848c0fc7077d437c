package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-ratelimit/ratelimit"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rulestest"
	"github.com/go-ratelimit/ratelimit/memorystore"
)

// compile builds a rule set of one file per YAML text, failing t on any error.
var compile = rulestest.Compile

// newMemEngine returns an engine over a fresh memorystore and the store, which t's cleanup
// closes. Inside a synctest bubble the cleanup runs in the bubble.
func newMemEngine(t testing.TB, set *rules.Set, opts *Options) (*Engine, *countingStore) {
	t.Helper()
	ms := memorystore.New(nil)
	t.Cleanup(func() { ms.Close() })
	cs := &countingStore{BatchStore: ms}
	return New(cs, set, opts), cs
}

// countingStore counts the calls that reach the store.
type countingStore struct {
	ratelimit.BatchStore
	mu                   sync.Mutex
	takes, takeAlls, rst int
}

func (c *countingStore) Take(ctx context.Context, key string, alg ratelimit.Algorithm, l ratelimit.Limit, n int) (ratelimit.Result, error) {
	c.mu.Lock()
	c.takes++
	c.mu.Unlock()
	return c.BatchStore.Take(ctx, key, alg, l, n)
}

func (c *countingStore) TakeAll(ctx context.Context, reqs []ratelimit.Request, results []ratelimit.Result) (bool, error) {
	c.mu.Lock()
	c.takeAlls++
	c.mu.Unlock()
	return c.BatchStore.TakeAll(ctx, reqs, results)
}

func (c *countingStore) Reset(ctx context.Context, key string, alg ratelimit.Algorithm) error {
	c.mu.Lock()
	c.rst++
	c.mu.Unlock()
	return c.BatchStore.Reset(ctx, key, alg)
}

func (c *countingStore) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takes + c.takeAlls + c.rst
}

// desc returns a descriptor of the key, value pairs kv.
func desc(kv ...string) Descriptor {
	if len(kv)%2 != 0 {
		panic("desc: odd number of strings")
	}
	d := Descriptor{}
	for i := 0; i < len(kv); i += 2 {
		d.Entries = append(d.Entries, rules.Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

// withHits returns d with its own hits_addend.
func withHits(d Descriptor, hits uint64) Descriptor {
	d.Hits, d.HasHits = hits, true
	return d
}

// withOverride returns d carrying a limit override.
func withOverride(d Descriptor, rpu uint32, unit rules.Unit) Descriptor {
	d.Override = &Override{RequestsPerUnit: rpu, Unit: unit}
	return d
}

// describe renders a status as the RLS API would report it: the code, the current limit
// ("-" for none) with its name in brackets, limit_remaining, and "shadow" for a shadow
// rule over its limit. For example "OK 3/MINUTE [per_user] remaining 2".
func describe(st Status) string {
	var b strings.Builder
	b.WriteString(st.Code.String())
	if r := st.Rule; r != nil {
		fmt.Fprintf(&b, " %d/%v", r.RequestsPerUnit, r.Unit)
		if r.Name != "" {
			fmt.Fprintf(&b, " [%s]", r.Name)
		}
	} else {
		b.WriteString(" -")
	}
	fmt.Fprintf(&b, " remaining %d", st.Remaining)
	if st.Shadow {
		b.WriteString(" shadow")
	}
	return b.String()
}

func describeAll(sts []Status) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = describe(st)
	}
	return out
}
