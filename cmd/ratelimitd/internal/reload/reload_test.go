package reload

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

func rule(domain string, n int) string {
	return "domain: " + domain + "\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: " + strings.Repeat("1", n) + "}\n"
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recorder is a Watcher whose loads and errors are kept.
func recorder(path string) (*Watcher, *[]*rules.Set, *[]error) {
	var sets []*rules.Set
	var errs []error
	w := &Watcher{
		Path:    path,
		OnLoad:  func(s *rules.Set) { sets = append(sets, s) },
		OnError: func(err error) { errs = append(errs, err) },
	}
	return w, &sets, &errs
}

func TestReadDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yml"), rule("b", 1))
	write(t, filepath.Join(dir, "a.yaml"), rule("a", 1))
	write(t, filepath.Join(dir, "notes.txt"), "not rules")
	write(t, filepath.Join(dir, ".hidden.yaml"), "domain: [")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	srcs, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, filepath.Base(s.Name))
	}
	if got := strings.Join(names, ","); got != "a.yaml,b.yml" {
		t.Errorf("read %s, want a.yaml,b.yml", got)
	}
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.yaml") {
		t.Errorf("empty directory: %v, want an error saying no rule files", err)
	}
}

func TestWatcherLoadsChangesOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	write(t, path, rule("a", 1))
	w, sets, errs := recorder(path)
	srcs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Init(srcs)
	w.poll(false)
	if len(*sets) != 0 {
		t.Fatalf("unchanged files loaded %d times, want 0", len(*sets))
	}
	write(t, path, rule("a", 2))
	w.poll(false)
	w.poll(false)
	if len(*sets) != 1 {
		t.Fatalf("one change loaded %d times, want 1", len(*sets))
	}
	if d, _ := (*sets)[0].Domain("a"); d.Rules[0].RequestsPerUnit != 11 {
		t.Errorf("loaded limit %d, want 11", d.Rules[0].RequestsPerUnit)
	}

	// A broken file is reported once, not at every poll, and a forced reload reports it
	// again.
	write(t, path, "domain: a\ndescriptors: [{key: k, rate_limit: {unit: eon, requests_per_unit: 1}}]\n")
	w.poll(false)
	w.poll(false)
	if len(*errs) != 1 || !strings.Contains((*errs)[0].Error(), "invalid rate limit unit 'eon'") {
		t.Fatalf("errors %v, want one naming the unit", *errs)
	}
	if err := w.Reload(); err == nil {
		t.Error("Reload of a broken file returned nil")
	}
	if len(*sets) != 1 {
		t.Errorf("a broken file was loaded")
	}
	// Reverting to the last good content loads it again, which clears the failure.
	write(t, path, rule("a", 2))
	w.poll(false)
	w.poll(false)
	if len(*sets) != 2 {
		t.Errorf("reverting a broken file: %d loads, want 2", len(*sets))
	}
	write(t, path, rule("a", 3))
	w.poll(false)
	if len(*sets) != 3 {
		t.Errorf("a new change after a revert: %d loads, want 3", len(*sets))
	}
}

// TestWatcherFollowsConfigMapSwap swaps a ConfigMap-style ..data link and sees the new
// content through the unchanged file link.
func TestWatcherFollowsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	publish := func(ts, data string) {
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, ts, "r.yaml"), data)
		tmp := filepath.Join(dir, "..tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("..v1", rule("a", 1))
	if err := os.Symlink("..data/r.yaml", filepath.Join(dir, "r.yaml")); err != nil {
		t.Fatal(err)
	}
	w, sets, errs := recorder(dir)
	srcs, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 {
		t.Fatalf("read %d files from a ConfigMap directory, want 1 (the ..data entries are hidden)", len(srcs))
	}
	w.Init(srcs)
	publish("..v2", rule("a", 2))
	w.poll(false)
	if len(*sets) != 1 || len(*errs) != 0 {
		t.Fatalf("after the swap: %d loads, errors %v; want 1 load", len(*sets), *errs)
	}
	if d, _ := (*sets)[0].Domain("a"); d.Rules[0].RequestsPerUnit != 11 {
		t.Errorf("loaded limit %d, want 11", d.Rules[0].RequestsPerUnit)
	}
}

func TestReadRefusesHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Read(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Read of a %d-byte file: %v, want too large", MaxFileSize+1, err)
	}
}

// TestWatcherRun polls until its context ends, and loads a change on its own.
func TestWatcherRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.yaml")
	write(t, path, rule("a", 1))
	loaded := make(chan *rules.Set, 1)
	w := &Watcher{Path: path, Interval: time.Millisecond, OnLoad: func(s *rules.Set) { loaded <- s }}
	srcs, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Init(srcs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	tmp := path + ".tmp"
	write(t, tmp, rule("b", 1))
	if err := os.Rename(tmp, path); err != nil { // as editors save: write, then rename
		t.Fatal(err)
	}
	select {
	case s := <-loaded:
		if _, ok := s.Domain("b"); !ok {
			t.Errorf("loaded %v, want domain b", s.Domains())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no load within 10s of a change")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
