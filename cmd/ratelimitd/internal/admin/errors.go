package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-ratelimit/ratelimit/cmd/ratelimitd/internal/engine"
)

// errorBody is every error answer: the error's text and, when it joins several, each one.
type errorBody struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	body := errorBody{Error: err.Error()}
	if list := flatten(err); len(list) > 1 {
		for _, e := range list {
			body.Errors = append(body.Errors, e.Error())
		}
	}
	writeJSON(w, status, body)
}

// flatten returns the errors a tree of errors.Join errors joins, looking through errors
// that wrap one; []error{err} when it joins nothing.
func flatten(err error) []error {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []error
		for _, c := range e.Unwrap() {
			out = append(out, flatten(c)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			if list := flatten(inner); len(list) > 1 {
				return list
			}
		}
	}
	return []error{err}
}

// writeBodyError answers a body that could not be read: 413 when over MaxBody.
func writeBodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is larger than %d bytes", mbe.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
}

// writeEngineError answers an error of the engine: 400 for a request it refuses, 500 for
// a store that failed.
func writeEngineError(w http.ResponseWriter, err error) {
	if errors.Is(err, engine.ErrInvalidRequest) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeError(w, http.StatusInternalServerError, err)
}
