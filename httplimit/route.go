package httplimit

import (
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strings"
)

// patternSet is what one registered pattern stands for.
type patternSet struct {
	exclude bool
	rules   []int
}

// patternHandler is registered on the matching mux; its value indexes compiled.sets.
type patternHandler int

func (patternHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// router registers the patterns of a configuration on its mux.
type router struct {
	c        *compiled
	patterns map[string]int // index in c.sets
}

func newRouter(c *compiled) *router { return &router{c: c, patterns: map[string]int{}} }

// register adds rule (or, with exclude, an exclusion) under pattern.
func (rt *router) register(pattern string, exclude bool, rule int) (err error) {
	c := rt.c
	i, ok := rt.patterns[pattern]
	if !ok {
		if c.mux == nil {
			c.mux = http.NewServeMux()
		}
		// ServeMux reports invalid and conflicting patterns only by panicking; turn
		// that into a configuration error, once, here.
		defer func() {
			if p := recover(); p != nil {
				err = muxError(pattern, p)
			}
		}()
		i = len(c.sets)
		c.sets = append(c.sets, patternSet{exclude: exclude})
		rt.patterns[pattern] = i
		c.mux.Handle(pattern, patternHandler(i))
	}
	if c.sets[i].exclude != exclude {
		return fmt.Errorf("%w: pattern %q is both excluded and limited", ErrConfig, pattern)
	}
	if !exclude {
		c.sets[i].rules = append(c.sets[i].rules, rule)
	}
	return nil
}

// finish adds a catch-all, which makes every answer of the mux either one of ours or a
// redirect (to a clean path, or to add a trailing slash), never "not found" or "method
// not allowed".
func (rt *router) finish() {
	c := rt.c
	if c.mux == nil {
		return
	}
	if _, ok := rt.patterns["/"]; !ok {
		i := len(c.sets)
		c.sets = append(c.sets, patternSet{})
		c.mux.Handle("/", patternHandler(i))
	}
}

// match appends to dst the indices of the rules that apply to r, in rule order, and
// reports false when r is excluded.
func (c *compiled) match(dst []int, r *http.Request) ([]int, bool) {
	var set []int
	if c.mux != nil {
		s, ok := c.lookup(r)
		if ok && s.exclude {
			return dst, false
		}
		set = s.rules
	}
	// Merge two ascending lists.
	a, b := c.always, set
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0] < b[0] {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	return dst, true
}

// lookup returns the pattern set the mux routes r to. A request the mux would redirect
// (an unclean path, a missing trailing slash) gets the set of where it would be sent,
// so spelling a path differently cannot escape its rules.
func (c *compiled) lookup(r *http.Request) (patternSet, bool) {
	h, _ := c.mux.Handler(r)
	if i, ok := h.(patternHandler); ok {
		return c.sets[i], true
	}
	if r.Method == http.MethodConnect {
		return patternSet{}, false
	}
	p := cleanPath(r.URL.Path)
	for _, try := range [2]string{p, p + "/"} {
		u := *r.URL
		u.Path, u.RawPath = try, ""
		r2 := *r
		r2.URL = &u
		if h, _ := c.mux.Handler(&r2); h != nil {
			if i, ok := h.(patternHandler); ok {
				return c.sets[i], true
			}
		}
	}
	return patternSet{}, false
}

// cleanPath returns p with . and .. elements and repeated slashes removed, rooted, with
// its trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// checkPattern reports whether p is a valid ServeMux pattern.
func checkPattern(p string) (err error) {
	// ServeMux reports invalid patterns only by panicking.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("invalid pattern %q: %v", p, v)
		}
	}()
	http.NewServeMux().Handle(p, patternHandler(0))
	return nil
}

// registeredAt is the place in the source ServeMux says a pattern was registered at.
var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// muxError is ServeMux's complaint p about pattern as a configuration error, naming the
// pattern once and without the place in httplimit's source that registered it:
// `pattern "GET /a/{": at offset 8: bad wildcard segment (must end with '}')`,
// `pattern "/x/{q}" conflicts with pattern "/x/{p}": /x/{q} matches the same requests as /x/{p}`.
func muxError(pattern string, p any) error {
	msg := strings.TrimPrefix(fmt.Sprint(p), fmt.Sprintf("parsing %q: ", pattern))
	msg = strings.ReplaceAll(registeredAt.ReplaceAllString(msg, ""), ":\n", ": ")
	if rest, ok := strings.CutPrefix(msg, fmt.Sprintf("pattern %q ", pattern)); ok {
		return fmt.Errorf("%w: pattern %q %s", ErrConfig, pattern, rest)
	}
	return fmt.Errorf("%w: pattern %q: %s", ErrConfig, pattern, msg)
}
