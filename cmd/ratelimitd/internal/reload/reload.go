// Package reload reads the rule files and reloads them when they change.
//
// The files are polled: every interval each file is read again and compared with what was
// last loaded. Polling reads through symbolic links, so it sees the symlink swap by which
// Kubernetes updates a mounted ConfigMap (the ..data link turned to a new directory) as
// well as an edit in place, an editor's write-and-rename, or a file added to or removed
// from the directory. A change is loaded only when two reads in a row agree, so that a
// swap caught half-way is not loaded as a mix of old and new files.
package reload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/rules"
)

// MaxFileSize is the largest rule file read.
const MaxFileSize = 16 << 20

// Read returns the rule files at path: the file itself, or every *.yaml and *.yml file
// of the directory (not its subdirectories; names starting with '.' are skipped), in name
// order.
func Read(path string) ([]rules.Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rule files: %w", err)
	}
	if !fi.IsDir() {
		src, err := readFile(path)
		if err != nil {
			return nil, err
		}
		return []rules.Source{src}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("rule files: %w", err)
	}
	var srcs []rules.Source
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if strings.HasPrefix(name, ".") || ext != ".yaml" && ext != ".yml" {
			continue
		}
		p := filepath.Join(path, name)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			continue // a dangling link or a directory named like a file
		}
		src, err := readFile(p)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("rule files: no *.yaml or *.yml file in %s", path)
	}
	return srcs, nil
}

func readFile(path string) (rules.Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return rules.Source{}, fmt.Errorf("rule files: %w", err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return rules.Source{}, fmt.Errorf("rule files: %s: %w", path, err)
	}
	if b.Len() > MaxFileSize {
		return rules.Source{}, fmt.Errorf("rule files: %s: larger than %d bytes", path, MaxFileSize)
	}
	return rules.Source{Name: path, Data: b.Bytes()}, nil
}

// Watcher reloads the rule files at Path when they change.
type Watcher struct {
	// Path is a rule file or a directory of them.
	Path string
	// Interval is the time between two polls. Zero disables polling; Reload still works.
	Interval time.Duration
	// OnLoad receives every newly compiled set.
	OnLoad func(*rules.Set)
	// OnError receives every failed reload; the last good set keeps serving.
	OnError func(error)

	mu     sync.Mutex
	last   [sha256.Size]byte // the files last loaded
	failed [sha256.Size]byte // the files last rejected, not reported again until they change
}

// Init records srcs as loaded, so that the first poll reloads only a change.
func (w *Watcher) Init(srcs []rules.Source) {
	w.mu.Lock()
	w.last = fingerprint(srcs)
	w.mu.Unlock()
}

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	if w.Interval <= 0 {
		return
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll(false)
		}
	}
}

// Reload reads and loads the files now, changed or not, and returns the error that
// rejected them, if any.
func (w *Watcher) Reload() error {
	return w.poll(true)
}

func (w *Watcher) poll(force bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	srcs, key, settled, err := settledRead(w.Path, force)
	if !settled {
		return err // caught mid-change: the next poll sees it settled
	}
	if !force && (key == w.failed || key == w.last && w.failed == [sha256.Size]byte{}) {
		return nil
	}
	var set *rules.Set
	if err == nil {
		set, err = rules.Compile(srcs)
	}
	if err != nil {
		w.failed = key
		if w.OnError != nil {
			w.OnError(err)
		}
		return err
	}
	w.last, w.failed = key, [sha256.Size]byte{}
	if w.OnLoad != nil {
		w.OnLoad(set)
	}
	return nil
}

// settledRead reads the files at path twice and reports whether both reads agree; a
// forced read tries a few times before it gives up with an error. key identifies what
// was read, or the error that stopped the reading.
func settledRead(path string, force bool) (srcs []rules.Source, key [sha256.Size]byte, settled bool, err error) {
	tries := 1
	if force {
		tries = 5
	}
	for range tries {
		srcs, err = Read(path)
		if err != nil {
			return nil, sha256.Sum256([]byte(err.Error())), true, err
		}
		key = fingerprint(srcs)
		again, err := Read(path)
		if err == nil && fingerprint(again) == key {
			return srcs, key, true, nil
		}
	}
	if force {
		err = fmt.Errorf("rule files: %s kept changing while being read", path)
	}
	return nil, key, false, err
}

// fingerprint hashes the names and contents of srcs.
func fingerprint(srcs []rules.Source) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d:%s%d:", len(s.Name), s.Name, len(s.Data))
		h.Write(s.Data)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
