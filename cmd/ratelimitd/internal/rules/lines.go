package rules

import "go.yaml.in/yaml/v3"

// lines maps the keys of one YAML mapping to the lines they stand on in the file; "" is
// the line the mapping starts on. A File built in code has none, and its errors name no
// line.
type lines map[string]int

// of returns the line of key, or the mapping's own line when key is not in the file.
func (l lines) of(key string) int {
	if n, ok := l[key]; ok {
		return n
	}
	return l[""]
}

// locate records in f where each of its mappings stands in doc, the node tree of the file
// f was decoded from.
func (f *File) locate(doc *yaml.Node) {
	m := resolve(doc)
	if m != nil && m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = resolve(m.Content[0])
	}
	f.lines = keyLines(m)
	locateDescriptors(f.Descriptors, valueOf(m, "descriptors"))
}

func locateDescriptors(ds []Descriptor, seq *yaml.Node) {
	if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) != len(ds) {
		return
	}
	for i := range ds {
		item := resolve(seq.Content[i])
		ds[i].lines = keyLines(item)
		if ds[i].RateLimit != nil {
			ds[i].RateLimit.lines = keyLines(valueOf(item, "rate_limit"))
		}
		locateDescriptors(ds[i].Descriptors, valueOf(item, "descriptors"))
	}
}

// keyLines returns the lines of m's keys, or nil when m is not a mapping.
func keyLines(m *yaml.Node) lines {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	l := lines{"": m.Line}
	for i := 0; i+1 < len(m.Content); i += 2 {
		l[m.Content[i].Value] = m.Content[i].Line
	}
	return l
}

// valueOf returns the value of key in the mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}
