// Package rules reads rate limit rules in envoyproxy/ratelimit's YAML format, with this
// project's extensions, and matches request descriptors against them.
//
// A file names one domain and a tree of descriptors:
//
//	domain: api
//	descriptors:
//	  - key: remote_address
//	    rate_limit: {unit: second, requests_per_unit: 10}
//	  - key: user
//	    value: "premium-*"          # a wildcard: every value starting with "premium-"
//	    rate_limit:
//	      requests_per_unit: 1000
//	      period: 5m                # extension: any window, instead of unit
//	      algorithm: gcra           # extension: any of the six algorithms (default fixed_window)
//	      burst: 50                 # extension: bucket capacity of token/leaky bucket and GCRA
//	  - key: remote_address
//	    rate_limit:
//	      unit: second
//	      requests_per_unit: 100
//	      consistency: eventual     # extension: decided from leases (fixed_window, sliding_window_counter)
//	      sync: 50ms                # extension: the eventual rule's background interval
//
// Matching follows envoyproxy/ratelimit: a request descriptor with k entries walks k
// levels of the tree; at each level the entry's key and value match a descriptor with that
// key and value first, then a wildcard value (in file order), then a descriptor with that
// key and no value. The rule is the rate_limit of the descriptor reached at level k; a walk
// that stops early, or a descriptor without rate_limit, means no limit.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is one rule file as written.
type File struct {
	Domain      string       `yaml:"domain" json:"domain"`
	Descriptors []Descriptor `yaml:"descriptors" json:"descriptors,omitempty"`

	lines lines // where its keys stand, for errors
}

// Descriptor is one level of a file's descriptor tree.
type Descriptor struct {
	Key         string       `yaml:"key" json:"key"`
	Value       string       `yaml:"value" json:"value,omitempty"`
	RateLimit   *RateLimit   `yaml:"rate_limit" json:"rate_limit,omitempty"`
	Descriptors []Descriptor `yaml:"descriptors" json:"descriptors,omitempty"`

	// ShadowMode evaluates and counts the limit but never denies.
	ShadowMode bool `yaml:"shadow_mode" json:"shadow_mode,omitempty"`

	// DetailedMetric labels this rule's metrics with the request's values instead of the
	// rule's; the number of such series per rule is capped.
	DetailedMetric bool `yaml:"detailed_metric" json:"detailed_metric,omitempty"`

	// ValueToMetric is accepted for compatibility and has no effect: metrics are labelled
	// by rule (see DetailedMetric).
	ValueToMetric bool `yaml:"value_to_metric" json:"value_to_metric,omitempty"`

	// ShareThreshold, on a wildcard value, makes every value the wildcard matches share one
	// counter.
	ShareThreshold bool `yaml:"share_threshold" json:"share_threshold,omitempty"`

	// QuotaMode is not supported; a file that sets it is rejected.
	QuotaMode bool `yaml:"quota_mode" json:"quota_mode,omitempty"`

	lines lines
}

// RateLimit is a descriptor's limit.
type RateLimit struct {
	// Unit is second, minute, hour, day, week, month (30 days) or year (365 days), in any
	// case. Exactly one of Unit and Period is set, unless Unlimited.
	Unit            string `yaml:"unit" json:"unit,omitempty"`
	RequestsPerUnit uint32 `yaml:"requests_per_unit" json:"requests_per_unit"`
	Unlimited       bool   `yaml:"unlimited" json:"unlimited,omitempty"`
	Name            string `yaml:"name" json:"name,omitempty"`
	Replaces        []struct {
		Name string `yaml:"name" json:"name"`
	} `yaml:"replaces" json:"replaces,omitempty"`

	// Period is a window of any length in Go's duration syntax ("5m", "90s", "2h30m").
	Period string `yaml:"period" json:"period,omitempty"`
	// Algorithm is one of fixed_window (the default, as in envoyproxy/ratelimit),
	// sliding_window_log, sliding_window_counter, token_bucket, leaky_bucket, gcra.
	Algorithm string `yaml:"algorithm" json:"algorithm,omitempty"`
	// Burst is the capacity of token_bucket, leaky_bucket and gcra; 0 means
	// requests_per_unit.
	Burst int `yaml:"burst" json:"burst,omitempty"`
	// Consistency is strict (every hit decided in the store) or eventual (hits decided
	// from units leased in chunks, fixed_window and sliding_window_counter only); empty
	// means the store's default.
	Consistency string `yaml:"consistency" json:"consistency,omitempty"`
	// Sync is the time scale of an eventual rule's background work, a duration such as
	// 100ms; empty means the store's default.
	Sync string `yaml:"sync" json:"sync,omitempty"`

	lines lines
}

// Source is the content of one rule file and the name its errors carry.
type Source struct {
	Name string
	Data []byte
}

var fieldNotFound = regexp.MustCompile(`field (\S+) not found in type \S+`)

// Parse decodes one file. Unknown keys are errors, as in envoyproxy/ratelimit; every
// decoding error of the file is reported, each prefixed with src.Name and its line. The
// File remembers where its descriptors stand, so that Compile's errors name lines too.
func Parse(src Source) (File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(src.Data))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	if errors.Is(err, io.EOF) || err == nil && len(bytes.TrimSpace(src.Data)) == 0 {
		return f, fmt.Errorf("%s: the file is empty", src.Name)
	}
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) == nil {
			return f, fmt.Errorf("%s: holds more than one YAML document; use one file per domain", src.Name)
		}
		var doc yaml.Node
		if yaml.Unmarshal(src.Data, &doc) == nil {
			f.locate(&doc)
		}
		return f, nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, len(te.Errors))
		for i, e := range te.Errors {
			errs[i] = fmt.Errorf("%s: %s", src.Name, fieldNotFound.ReplaceAllString(e, "unknown key '$1'"))
		}
		return f, errors.Join(errs...)
	}
	return f, fmt.Errorf("%s: %s", src.Name, strings.TrimPrefix(err.Error(), "yaml: "))
}
