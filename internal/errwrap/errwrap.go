// Package errwrap wraps an error in the operation that met it, naming each layer once.
//
// An error of this module starts with its package's name ("ratelimit: invalid limit: …").
// Wrapping it as fmt.Errorf("ratelimit: parse limit %q: %w", s, err) would name the package
// twice; [Op] drops the inner prefix from the message and keeps the error itself, so
// errors.Is and errors.As still see every sentinel and type it wraps.
package errwrap

import "strings"

// Op returns an error reading "pkg: op: cause", where cause is err's message without a
// leading "pkg: ", and which unwraps to err. err must not be nil.
//
//	Op("ratelimit", `parse limit "0/s"`, err) // ratelimit: parse limit "0/s": invalid limit: rate 0 must be positive
func Op(pkg, op string, err error) error {
	return &opError{pkg: pkg, op: op, err: err}
}

type opError struct {
	pkg, op string
	err     error
}

func (e *opError) Error() string {
	prefix := e.pkg + ": "
	return prefix + e.op + ": " + strings.TrimPrefix(e.err.Error(), prefix)
}

func (e *opError) Unwrap() error { return e.err }
