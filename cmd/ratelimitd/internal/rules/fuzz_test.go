package rules

import "testing"

// FuzzCompile: any file content compiles to a set or to errors, never a panic, and a set
// answers Match for any entries.
func FuzzCompile(f *testing.F) {
	f.Add([]byte("domain: d\ndescriptors:\n  - key: k\n    value: v*\n    share_threshold: true\n    rate_limit: {unit: second, requests_per_unit: 5}\n"), "k", "vx")
	f.Add([]byte("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {requests_per_unit: 5, period: 90s, algorithm: gcra, burst: 9}\n"), "k", "")
	f.Add([]byte("domain: [\n"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, key, value string) {
		set, err := Compile([]Source{{Name: "f.yaml", Data: data}})
		if err != nil {
			return
		}
		shared := make([]string, 2)
		for _, d := range set.Domains() {
			set.Match(d.Name, []Entry{{key, value}}, shared)
			set.Match(d.Name, []Entry{{key, value}, {value, key}}, shared)
			for _, r := range d.Rules {
				if !r.Unlimited && r.Limit.Rate > 0 {
					if err := r.Limit.Validate(); err != nil {
						t.Fatalf("compiled rule %s has an invalid limit: %v", r.ID, err)
					}
				}
			}
		}
	})
}
