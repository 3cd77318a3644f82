package config

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the values a document may expand to through aliases, so that
// a "billion laughs" file fails instead of exhausting memory.
const maxNodes = 100_000

// tree is a kiln.yaml as a JSON-compatible value (what the schema validator
// takes), with the place every value came from, keyed by JSON pointer.
type tree struct {
	value  any
	places map[string]place
}

// syntaxLine picks the line out of yaml's "yaml: line 14: ..." messages.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads the one YAML document in data. An empty file yields an empty
// document node.
func parseYAML(data []byte, p *problems) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		syntaxError(err, p)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		syntaxError(err, p)
	default:
		p.add(place{line: extra.Line}, "only one YAML document is allowed; a second one starts here")
	}
	return &doc
}

func syntaxError(err error, p *problems) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.add(place{line: line}, "YAML syntax: %s", m[2])
		return
	}
	p.add(place{}, "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

// newTree converts a document node. Duplicate keys, which yaml.v3 leaves in
// nodes, are reported here.
func newTree(doc *yaml.Node, p *problems) *tree {
	c := &converter{t: &tree{places: map[string]place{}}, p: p, budget: maxNodes}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root := doc.Content[0]
		c.t.places[""] = place{line: root.Line}
		c.t.value = c.value(root, nil, "")
	} else {
		c.t.places[""] = place{line: 1}
		c.t.value = map[string]any{}
	}
	return c.t
}

// at returns the place of the value at the given path (strings for keys, ints
// for list indexes). A value that is absent, such as a defaulted field, is
// placed at its nearest present parent.
func (t *tree) at(path ...any) place { return t.place(tokens(path)) }

// place is at for a path already in tokens, such as a schema error's instance
// location.
func (t *tree) place(toks []string) place {
	for ; len(toks) > 0; toks = toks[:len(toks)-1] {
		if pl, ok := t.places[pointer(toks)]; ok {
			return pl
		}
	}
	return t.places[""]
}

// lookup returns the value at the given path within v, or nil.
func lookup(v any, path ...any) any {
	for _, tok := range path {
		switch x := v.(type) {
		case map[string]any:
			k, _ := tok.(string)
			v = x[k]
		case []any:
			i, ok := tok.(int)
			if !ok || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func tokens(path []any) []string {
	out := make([]string, len(path))
	for i, p := range path {
		switch x := p.(type) {
		case int:
			out[i] = strconv.Itoa(x)
		case string:
			out[i] = x
		}
	}
	return out
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")

// pointer renders tokens as a JSON pointer, the form the schema validator uses
// for instance locations.
func pointer(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(pointerEscape.Replace(t))
	}
	return b.String()
}

// plainKey matches keys written as `.key` in field paths; others are quoted.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// childField is the readable path of a mapping's entry.
func childField(parent, key string) string {
	switch {
	case !plainKey.MatchString(key):
		return parent + "[" + strconv.Quote(key) + "]"
	case parent == "":
		return key
	}
	return parent + "." + key
}
