package httplimit_test

import (
	"fmt"
	"strconv"
	"strings"
)

// sfItem is one member of an RFC 9651 structured-field list: a bare item with
// parameters. Only the bare item types the rate-limit fields use are parsed: strings,
// integers, tokens and booleans; anything else is a syntax error.
type sfItem struct {
	value  any // string (sf-string), sfToken, int64, bool
	params []sfParam
}

type sfToken string

type sfParam struct {
	key   string
	value any
}

func (it sfItem) param(key string) (any, bool) {
	for _, p := range it.params {
		if p.key == key {
			return p.value, true
		}
	}
	return nil, false
}

// parseSFList parses a field value as an sf-list strictly (RFC 9651 section 4.2),
// rejecting inner lists and the bare item types above.
func parseSFList(field string) ([]sfItem, error) {
	p := &sfParser{s: strings.TrimLeft(field, " ")}
	p.s = strings.TrimRight(p.s, " ")
	var items []sfItem
	for p.s != "" {
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		p.ows()
		if p.s == "" {
			return items, nil
		}
		if p.s[0] != ',' {
			return nil, fmt.Errorf("want ',' at %q", p.s)
		}
		p.s = p.s[1:]
		p.ows()
		if p.s == "" {
			return nil, fmt.Errorf("trailing comma")
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return items, nil
}

type sfParser struct{ s string }

func (p *sfParser) ows() {
	for p.s != "" && (p.s[0] == ' ' || p.s[0] == '\t') {
		p.s = p.s[1:]
	}
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bareItem()
	if err != nil {
		return sfItem{}, err
	}
	it := sfItem{value: v}
	seen := map[string]bool{}
	for p.s != "" && p.s[0] == ';' {
		p.s = p.s[1:]
		for p.s != "" && p.s[0] == ' ' {
			p.s = p.s[1:]
		}
		key, err := p.key()
		if err != nil {
			return sfItem{}, err
		}
		var val any = true
		if p.s != "" && p.s[0] == '=' {
			p.s = p.s[1:]
			if val, err = p.bareItem(); err != nil {
				return sfItem{}, err
			}
		}
		if seen[key] {
			return sfItem{}, fmt.Errorf("parameter %q twice", key) // RFC 9651 overwrites; we want none
		}
		seen[key] = true
		it.params = append(it.params, sfParam{key, val})
	}
	return it, nil
}

func (p *sfParser) key() (string, error) {
	if p.s == "" || !(p.s[0] >= 'a' && p.s[0] <= 'z' || p.s[0] == '*') {
		return "", fmt.Errorf("bad key start at %q", p.s)
	}
	i := 1
	for i < len(p.s) && (p.s[i] >= 'a' && p.s[i] <= 'z' || p.s[i] >= '0' && p.s[i] <= '9' || strings.IndexByte("_-.*", p.s[i]) >= 0) {
		i++
	}
	k := p.s[:i]
	p.s = p.s[i:]
	return k, nil
}

func (p *sfParser) bareItem() (any, error) {
	if p.s == "" {
		return nil, fmt.Errorf("missing bare item")
	}
	switch c := p.s[0]; {
	case c == '-' || c >= '0' && c <= '9':
		i := 0
		if c == '-' {
			i++
		}
		start := i
		for i < len(p.s) && p.s[i] >= '0' && p.s[i] <= '9' {
			i++
		}
		if i == start || i-start > 15 {
			return nil, fmt.Errorf("bad integer at %q", p.s)
		}
		if i < len(p.s) && p.s[i] == '.' {
			return nil, fmt.Errorf("decimals not expected at %q", p.s)
		}
		n, err := strconv.ParseInt(p.s[:i], 10, 64)
		if err != nil {
			return nil, err
		}
		p.s = p.s[i:]
		return n, nil
	case c == '"':
		var b strings.Builder
		for i := 1; i < len(p.s); i++ {
			switch ch := p.s[i]; {
			case ch == '\\':
				if i+1 >= len(p.s) || p.s[i+1] != '"' && p.s[i+1] != '\\' {
					return nil, fmt.Errorf("bad escape in %q", p.s)
				}
				i++
				b.WriteByte(p.s[i])
			case ch == '"':
				p.s = p.s[i+1:]
				return b.String(), nil
			case ch < 0x20 || ch > 0x7e:
				return nil, fmt.Errorf("bad string byte %#x", ch)
			default:
				b.WriteByte(ch)
			}
		}
		return nil, fmt.Errorf("unterminated string")
	case c == '?':
		if len(p.s) >= 2 && (p.s[1] == '0' || p.s[1] == '1') {
			v := p.s[1] == '1'
			p.s = p.s[2:]
			return v, nil
		}
		return nil, fmt.Errorf("bad boolean")
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		i := 1
		for i < len(p.s) && (isTchar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
			i++
		}
		t := p.s[:i]
		p.s = p.s[i:]
		return sfToken(t), nil
	}
	return nil, fmt.Errorf("unexpected %q", p.s)
}

func isTchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
