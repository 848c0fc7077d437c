package admin

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
)

// FuzzDescriptor: the /v1/keys query parser never panics, and what it accepts is a
// domain and 1 to engine.MaxEntries entries, each with a key.
func FuzzDescriptor(f *testing.F) {
	for _, q := range []string{
		"domain=api&entry=user=alice",
		"domain=api&entry=path=/search&entry=x=a=b",
		"domain=api&entry==v",
		"domain=&entry=a=b",
		"domain=api&entry=%zz",
		"entry=a=b;domain=api",
		"domain=api" + strings.Repeat("&entry=k=v", engine.MaxEntries+1),
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/v1/keys", nil)
		r.URL.RawQuery = query
		domain, entries, err := descriptor(r)
		if err != nil {
			return
		}
		if domain == "" || len(entries) == 0 || len(entries) > engine.MaxEntries {
			t.Fatalf("descriptor(%q) = %q, %d entries, want a domain and 1 to %d entries", query, domain, len(entries), engine.MaxEntries)
		}
		for i, e := range entries {
			if e.Key == "" {
				t.Fatalf("descriptor(%q): entry %d has an empty key", query, i)
			}
		}
	})
}
