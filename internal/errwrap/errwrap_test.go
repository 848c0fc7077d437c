package errwrap

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestOp(t *testing.T) {
	sentinel := errors.New("pkg: invalid thing")
	pathErr := &fs.PathError{Op: "open", Path: "f", Err: fs.ErrNotExist}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: too big", sentinel), "pkg: parse: invalid thing: too big"},
		{errors.New("want a number"), "pkg: parse: want a number"},
		{errors.New("other: failed"), "pkg: parse: other: failed"},
		{errors.New("pkg:no space"), "pkg: parse: pkg:no space"},
		{pathErr, "pkg: parse: open f: file does not exist"},
	} {
		err := Op("pkg", "parse", tc.err)
		if got := err.Error(); got != tc.want {
			t.Errorf("Op(%q) = %q, want %q", tc.err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("Op(%q) does not match the error it wraps", tc.err)
		}
	}
	if err := Op("pkg", "parse", fmt.Errorf("%w: too big", sentinel)); !errors.Is(err, sentinel) {
		t.Errorf("Op(%q) does not match the sentinel below it", err)
	}
	var pe *fs.PathError
	if err := Op("pkg", "parse", pathErr); !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Op(%q): errors.As and errors.Is do not see through it", err)
	}
}
