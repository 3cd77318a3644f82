package config

import (
	"fmt"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// converter turns yaml.Nodes into JSON-compatible values (map[string]any,
// []any, string, bool, numbers, nil), recording where each value came from.
type converter struct {
	t      *tree
	p      *problems
	budget int
}

func (c *converter) value(n *yaml.Node, toks []string, field string) any {
	if c.budget--; c.budget == 0 {
		c.p.add(c.t.place(toks), "document expands to more than %d values through aliases", maxNodes)
	}
	if c.budget < 0 {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		return c.value(n.Alias, toks, field)
	case yaml.MappingNode:
		out := map[string]any{}
		c.mapping(out, n, toks, field)
		return out
	case yaml.SequenceNode:
		return c.sequence(n, toks, field)
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil
}

func (c *converter) sequence(n *yaml.Node, toks []string, field string) []any {
	out := make([]any, len(n.Content))
	for i, item := range n.Content {
		t := append(slices.Clip(toks), strconv.Itoa(i))
		f := fmt.Sprintf("%s[%d]", field, i)
		c.t.places[pointer(t)] = place{line: item.Line, field: f}
		out[i] = c.value(item, t, f)
	}
	return out
}

// mapping adds n's entries to out, keeping entries out already has. Keys
// written out are added before those merged in with `<<`, and earlier merged
// mappings before later ones, so each wins over the next, as YAML specifies.
func (c *converter) mapping(out map[string]any, n *yaml.Node, toks []string, field string) {
	var merges []*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch first, dup := seen[k.Value]; {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merges = append(merges, v)
		case k.Kind != yaml.ScalarNode:
			c.p.add(place{line: k.Line, field: field}, "field names must be plain strings")
		case dup:
			c.p.add(place{line: k.Line, field: childField(field, k.Value)},
				"duplicate field %q (first at line %d)", k.Value, first)
		default:
			seen[k.Value] = k.Line
			c.entry(out, k, v, toks, field)
		}
	}
	for _, m := range merges {
		c.merge(out, m, toks, field)
	}
}

func (c *converter) entry(out map[string]any, k, v *yaml.Node, toks []string, field string) {
	if _, had := out[k.Value]; had {
		return
	}
	t := append(slices.Clip(toks), k.Value)
	f := childField(field, k.Value)
	c.t.places[pointer(t)] = place{line: k.Line, field: f}
	out[k.Value] = c.value(v, t, f)
}

// merge handles a `<<` key whose value is a mapping or a list of mappings.
func (c *converter) merge(out map[string]any, v *yaml.Node, toks []string, field string) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		c.mapping(out, v, toks, field)
		return
	case yaml.SequenceNode:
		for _, m := range v.Content {
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind == yaml.MappingNode {
				c.mapping(out, m, toks, field)
				continue
			}
			c.p.add(place{line: m.Line, field: field}, "<< merges only mappings")
		}
		return
	}
	c.p.add(place{line: v.Line, field: field}, "<< merges only mappings")
}

// scalar returns a scalar's JSON value. Strings, timestamps and custom tags
// stay the text as written, which is also what decoding into a string field
// yields.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err == nil {
			return v
		}
	}
	return n.Value
}
