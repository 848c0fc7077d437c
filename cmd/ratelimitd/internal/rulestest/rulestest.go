// Package rulestest builds the rule sets of the service's tests and benchmarks.
package rulestest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// Compile compiles a rule set of one file per YAML text, failing t on any error.
func Compile(t testing.TB, files ...string) *rules.Set {
	t.Helper()
	srcs := make([]rules.Source, len(files))
	for i, f := range files {
		srcs[i] = rules.Source{Name: fmt.Sprintf("rules%d.yaml", i), Data: []byte(f)}
	}
	set, err := rules.Compile(srcs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return set
}

// Limits returns the rule file of domain whose descriptors are keys alone, each with
// its limit: pairs of a key and requests_per_unit/unit, such as "user", "5/minute".
func Limits(domain string, keyLimits ...string) string {
	if len(keyLimits)%2 != 0 {
		panic("rulestest.Limits: a key without a limit")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "domain: %s\ndescriptors:\n", domain)
	for i := 0; i < len(keyLimits); i += 2 {
		n, unit, ok := strings.Cut(keyLimits[i+1], "/")
		if !ok {
			panic("rulestest.Limits: limit " + keyLimits[i+1] + " is not N/unit")
		}
		fmt.Fprintf(&b, "  - key: %s\n    rate_limit: {unit: %s, requests_per_unit: %s}\n", keyLimits[i], unit, n)
	}
	return b.String()
}
