package rules

import (
	"strings"
	"testing"
)

// nested returns a rule file whose descriptors nest depth levels, the deepest with a rule.
func nested(depth int) string {
	d := "{key: k, rate_limit: {unit: second, requests_per_unit: 1}}"
	for range depth - 1 {
		d = "{key: k, descriptors: [" + d + "]}"
	}
	return "domain: deep\ndescriptors: [" + d + "]\n"
}

// TestDepth: a rule at the deepest level a request can reach loads; one level
// deeper is rejected at load, since it could never match.
func TestDepth(t *testing.T) {
	set, err := Compile([]Source{{Name: "deep.yaml", Data: []byte(nested(MaxDepth))}})
	if err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	if set.Len() != 1 {
		t.Fatalf("%d levels: %d rules, want 1", MaxDepth, set.Len())
	}
	_, err = Compile([]Source{{Name: "deep.yaml", Data: []byte(nested(MaxDepth + 1))}})
	if err == nil || !strings.Contains(err.Error(), "deep.yaml") || !strings.Contains(err.Error(), "nested deeper than 32 levels") {
		t.Errorf("%d levels: %v, want an error naming the file and the depth", MaxDepth+1, err)
	}
}
