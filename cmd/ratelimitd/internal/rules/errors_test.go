package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit"
)

// TestCompileErrors checks the message each broken file produces. Messages name the file
// and, for descriptor errors, the descriptor, and are worded like envoyproxy/ratelimit's.
func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		// files are compiled together, named a.yaml, b.yaml, ...
		files []string
		want  string
	}{
		{
			name:  "empty domain",
			files: []string{"domain: \"\"\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 1: config file cannot have empty domain",
		},
		{
			name:  "no domain",
			files: []string{"descriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n"},
			want:  "a.yaml: config file cannot have empty domain",
		},
		{
			name:  "duplicate domain across files",
			files: []string{"domain: api\n", "domain: api\n"},
			want:  "b.yaml: line 1: duplicate domain 'api' in config file (first in a.yaml)",
		},
		{
			name:  "empty key",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    descriptors:\n      - value: x\n"},
			want:  "a.yaml: line 5: descriptor 'api.a': descriptor has empty key",
		},
		{
			name:  "empty key at the top",
			files: []string{"domain: api\ndescriptors:\n  - value: x\n"},
			want:  "a.yaml: line 3: descriptor 'api': descriptor has empty key",
		},
		{
			name:  "duplicate composite key",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    value: x\n  - key: a\n    value: x\n"},
			want:  "a.yaml: line 5: duplicate descriptor composite key 'api.a_x'",
		},
		{
			name:  "duplicate key-only descriptor",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n"},
			want:  "a.yaml: line 6: duplicate descriptor composite key 'api.a.b'",
		},
		{
			name:  "unit with unlimited",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, unit: second}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': should not specify rate limit unit when unlimited",
		},
		{
			name:  "period with unlimited",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, period: 5m}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': should not specify rate limit unit when unlimited",
		},
		{
			name:  "algorithm with unlimited",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, algorithm: gcra}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': unlimited takes no algorithm or burst",
		},
		{
			name:  "invalid unit",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': invalid rate limit unit 'fortnight'",
		},
		{
			name:  "unit UNKNOWN",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: unknown, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': invalid rate limit unit 'unknown'",
		},
		{
			name:  "no unit",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': invalid rate limit unit ''",
		},
		{
			name:  "empty replaces entry",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n      replaces:\n        - name: \"\"\n"},
			want:  "a.yaml: line 7: descriptor 'api.a': should not have an empty replaces entry",
		},
		{
			name:  "replaces naming itself",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n      name: me\n      replaces:\n        - name: me\n"},
			want:  "a.yaml: line 8: descriptor 'api.a': replaces should not contain name of same descriptor",
		},
		{
			name:  "share_threshold without wildcard",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    value: x\n    share_threshold: true\n    rate_limit: {unit: second, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 5: descriptor 'api.a_x': share_threshold can only be used with wildcard values (ending with '*'), but found key 'a_x'",
		},
		{
			name:  "quota_mode",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    quota_mode: true\n    rate_limit: {unit: second, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': quota_mode is not supported",
		},
		{
			name:  "unknown key",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: second\n      requests_per_unit: 1\n      burts: 5\n"},
			want:  "a.yaml: line 7: unknown key 'burts'",
		},
		{
			name:  "unknown top-level key",
			files: []string{"domain: api\nversion: 2\n"},
			want:  "a.yaml: line 2: unknown key 'version'",
		},
		{
			name:  "unit and period both",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, period: 5m, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': set either unit or period, not both",
		},
		{
			name:  "bad period",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {period: 5 fortnights, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': invalid period '5 fortnights': want a positive duration such as 90s, 5m, 2h or 1d",
		},
		{
			name:  "negative period",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {period: -5m, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': invalid period '-5m'",
		},
		{
			name:  "bad algorithm",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, algorithm: magic}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': ratelimit: invalid algorithm: \"magic\" is not one of fixed_window, sliding_window_log, sliding_window_counter, token_bucket, leaky_bucket, gcra",
		},
		{
			name:  "burst on a window algorithm",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, algorithm: sliding_window_log, burst: 5}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': burst applies to token_bucket, leaky_bucket and gcra, not sliding_window_log",
		},
		{
			name:  "burst on the default fixed window",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, burst: 5}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': burst applies to token_bucket, leaky_bucket and gcra, not fixed_window",
		},
		{
			name:  "negative burst",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, algorithm: gcra, burst: -1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': burst -1 must not be negative",
		},
		{
			name:  "refill too long",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {period: 2000000h, requests_per_unit: 1}\n"},
			want:  "a.yaml: line 4: descriptor 'api.a': ratelimit: invalid limit: 1/2000000h0m0s: refilling 1 units takes longer than",
		},
		{
			name:  "burst refill too long",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: year, requests_per_unit: 1, algorithm: token_bucket, burst: 1000}\n"},
			want:  "refilling 1000 units takes longer than",
		},
		{
			name:  "empty file",
			files: []string{""},
			want:  "a.yaml: the file is empty",
		},
		{
			name:  "file of comments only",
			files: []string{"# nothing yet\n\n"},
			want:  "a.yaml: the file is empty",
		},
		{
			name:  "two YAML documents",
			files: []string{"domain: api\n---\ndomain: web\n"},
			want:  "a.yaml: holds more than one YAML document; use one file per domain",
		},
		{
			name:  "malformed YAML",
			files: []string{"domain: api\ndescriptors:\n  - key: [a\n"},
			want:  "a.yaml: line 2: did not find expected ',' or ']'",
		},
		{
			name:  "wrong type",
			files: []string{"domain: api\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: many}\n"},
			want:  "a.yaml: line 4: cannot unmarshal !!str `many` into uint32",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcs := make([]Source, len(tc.files))
			for i, f := range tc.files {
				srcs[i] = Source{Name: string(rune('a'+i)) + ".yaml", Data: []byte(f)}
			}
			set, err := Compile(srcs)
			if err == nil {
				t.Fatalf("Compile: got no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile: got error %q, want it to contain %q", err, tc.want)
			}
			if set == nil {
				t.Fatal("Compile: got a nil Set with the error, want the domains that compiled")
			}
		})
	}
}

// TestCompileReportsEveryError compiles several broken files, with several errors each, and
// checks that every error is in the joined error, and that the good file still compiled.
func TestCompileReportsEveryError(t *testing.T) {
	srcs := []Source{
		{Name: "good.yaml", Data: []byte("domain: good\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n")},
		{Name: "units.yaml", Data: []byte(`domain: units
descriptors:
  - key: a
    rate_limit: {unit: fortnight, requests_per_unit: 1}
  - key: b
    rate_limit: {unlimited: true, unit: second}
  - key: c
    descriptors:
      - key: d
        quota_mode: true
        rate_limit: {unit: second, requests_per_unit: 1, algorithm: gcra, burst: -2}
`)},
		{Name: "keys.yaml", Data: []byte(`domain: keys
descriptors:
  - key: a
    typo: 1
    rate_limit: {unit: second, requests_per_unit: 1, extra: 2}
`)},
		{Name: "dup.yaml", Data: []byte("domain: good\n")},
		{Name: "empty.yaml", Data: nil},
		{Name: "nodomain.yaml", Data: []byte("descriptors:\n  - value: x\n")},
	}
	set, err := Compile(srcs)
	if err == nil {
		t.Fatal("Compile: got no error, want several")
	}
	want := strings.Join([]string{
		"units.yaml: line 4: descriptor 'units.a': invalid rate limit unit 'fortnight'",
		"units.yaml: line 6: descriptor 'units.b': should not specify rate limit unit when unlimited",
		"units.yaml: line 10: descriptor 'units.c.d': quota_mode is not supported",
		"units.yaml: line 11: descriptor 'units.c.d': burst -2 must not be negative",
		"keys.yaml: line 4: unknown key 'typo'",
		"keys.yaml: line 5: unknown key 'extra'",
		"dup.yaml: line 1: duplicate domain 'good' in config file (first in good.yaml)",
		"empty.yaml: the file is empty",
		"nodomain.yaml: config file cannot have empty domain",
		"nodomain.yaml: line 2: descriptor has empty key",
	}, "\n")
	if got := err.Error(); got != want {
		t.Errorf("Compile: got error\n%v\nwant\n%v", got, want)
	}
	if got := set.Domains(); len(got) != 1 || got[0].Name != "good" || got[0].Source != "good.yaml" {
		t.Errorf("Domains after errors: got %+v, want only good from good.yaml", got)
	}
}

// TestParse checks that Parse keeps every field of a valid file.
func TestParse(t *testing.T) {
	f, err := Parse(Source{Name: "x.yaml", Data: []byte(`domain: api
descriptors:
  - key: user
    value: "premium-*"
    shadow_mode: true
    detailed_metric: true
    value_to_metric: true
    share_threshold: true
    rate_limit:
      requests_per_unit: 1000
      period: 5m
      algorithm: gcra
      burst: 50
      name: premium
      replaces:
        - name: basic
    descriptors:
      - key: path
`)})
	if err != nil {
		t.Fatalf("Parse: got error %v, want none", err)
	}
	if f.Domain != "api" || len(f.Descriptors) != 1 {
		t.Fatalf("Parse: got domain %q with %d descriptors, want api with 1", f.Domain, len(f.Descriptors))
	}
	d := f.Descriptors[0]
	if d.Key != "user" || d.Value != "premium-*" || !d.ShadowMode || !d.DetailedMetric || !d.ValueToMetric || !d.ShareThreshold || d.QuotaMode {
		t.Errorf("Parse: got descriptor %+v, want user=premium-* with every flag but quota_mode", d)
	}
	rl := d.RateLimit
	if rl == nil || rl.RequestsPerUnit != 1000 || rl.Period != "5m" || rl.Algorithm != "gcra" || rl.Burst != 50 || rl.Name != "premium" || len(rl.Replaces) != 1 || rl.Replaces[0].Name != "basic" {
		t.Errorf("Parse: got rate_limit %+v, want 1000 per 5m, gcra, burst 50, premium replacing basic", rl)
	}
	if len(d.Descriptors) != 1 || d.Descriptors[0].Key != "path" || d.Descriptors[0].RateLimit != nil {
		t.Errorf("Parse: got children %+v, want one key path without rate_limit", d.Descriptors)
	}
}

// TestPeriodGrammar: period reads what ratelimit.ParseLimit reads after the slash, Go
// durations and counted units alike, days included.
func TestPeriodGrammar(t *testing.T) {
	for period, want := range map[string]time.Duration{
		"1d": 24 * time.Hour, "2 days": 48 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute,
		"5 minutes": 5 * time.Minute, "day": 24 * time.Hour,
	} {
		set, err := Compile([]Source{{Name: "a.yaml", Data: []byte("domain: api\ndescriptors:\n  - key: a\n    rate_limit: {period: " + period + ", requests_per_unit: 10}\n")}})
		if err != nil {
			t.Errorf("period %q: %v", period, err)
			continue
		}
		d, _ := set.Domain("api")
		if got := d.Rules[0].Limit.Period; got != want {
			t.Errorf("period %q = %v, want %v", period, got, want)
		}
		if l, err := ratelimit.ParseLimit("10/" + period); err != nil || l.Period != want {
			t.Errorf("ParseLimit(10/%s) = %v, %v; want the same period %v", period, l, err, want)
		}
	}
}

// TestCompileErrorLines checks the exact file and line of the errors found after decoding,
// in a file of block mappings where each key stands on a line of its own: a bad unit names
// the line of its unit, a duplicate descriptor the line of its key and of the first one,
// and the errors inside a duplicate are reported too.
// A File built in code has no lines, and its errors name none.
func TestCompileErrorLines(t *testing.T) {
	src := Source{Name: "rules/api.yaml", Data: []byte(`domain: api
descriptors:
  - key: user
    rate_limit:
      requests_per_unit: 10
      unit: fortnight
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit: {unit: second, requests_per_unit: 1}
      - key: remote_address
        rate_limit:
          unit: minute
          requests_per_unit: 5
          algorithm: gcra
          burst: -1
  - key: path
    value: /login
`)}
	_, err := Compile([]Source{src})
	want := strings.Join([]string{
		"rules/api.yaml: line 6: descriptor 'api.user': invalid rate limit unit 'fortnight'",
		"rules/api.yaml: line 12: duplicate descriptor composite key 'api.path_/login.remote_address' (first at line 10)",
		"rules/api.yaml: line 17: descriptor 'api.path_/login.remote_address': burst -1 must not be negative",
		"rules/api.yaml: line 18: duplicate descriptor composite key 'api.path_/login' (first at line 7)",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("Compile: got error\n%v\nwant\n%v", err, want)
	}

	f := File{Domain: "api", Descriptors: []Descriptor{
		{Key: "user", RateLimit: &RateLimit{Unit: "fortnight", RequestsPerUnit: 1}},
		{Key: "user"},
	}}
	_, err = (&Set{}).WithDomain(f, "admin")
	want = "admin: descriptor 'api.user': invalid rate limit unit 'fortnight'\nadmin: duplicate descriptor composite key 'api.user'"
	if err == nil || err.Error() != want {
		t.Errorf("WithDomain: got error\n%v\nwant\n%v", err, want)
	}
}
