package cfn

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// injectYAML edits the template as a yaml.v3 node tree rather than a Go map:
// nodes keep their tags (!Ref, !Sub, ...), quoting style, key order and
// comments, so only the mapping we own changes meaning.
func injectYAML(name string, src []byte, amis AMIMap, o Options) ([]byte, error) {
	root, err := parseYAML(name, src)
	if err != nil {
		return nil, err
	}
	if err := setMapping(name, root, yamlMapping(amis, o.Key), o.MappingName); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, &Error{File: name, Msg: "cannot write the template back: " + err.Error()}
	}
	if err := enc.Close(); err != nil {
		return nil, &Error{File: name, Msg: "cannot write the template back: " + err.Error()}
	}
	return out.Bytes(), nil
}

// parseYAML returns the template's document node; it must hold exactly one
// document whose top level is a mapping.
func parseYAML(name string, src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "the template is empty"}
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(name, err)
		}
		return nil, &Error{File: name, Line: extra.Line, Msg: "the template has more than one YAML document"}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: doc.Line, Msg: "the template is not a YAML mapping"}
	}
	return &doc, nil
}

// yamlLineRE finds the line yaml.v3 puts in its messages: "yaml: line 3: ...".
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// yamlError turns a yaml.v3 parse error into an *Error with its line.
func yamlError(name string, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &Error{File: name, Line: line, Msg: "not valid YAML: " + msg}
}

// setMapping puts value at Mappings.<mapping> in the document, creating
// Mappings if needed, and leaves every other node alone.
func setMapping(name string, doc *yaml.Node, value *yaml.Node, mapping string) error {
	top := doc.Content[0]
	i := findKey(top, "Mappings")
	if i < 0 {
		at := 0
		for k := 0; k < len(top.Content); k += 2 {
			if mappingsBefore[top.Content[k].Value] {
				at = k + 2
			}
		}
		section := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map",
			Content: []*yaml.Node{strNode(mapping), value}}
		top.Content = insert(top.Content, at, strNode("Mappings"), section)
		return nil
	}
	section := top.Content[i+1]
	if section.Kind == yaml.ScalarNode && section.Tag == "!!null" {
		// "Mappings:" with nothing under it: the same as an empty mapping.
		*section = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", LineComment: section.LineComment}
	}
	if section.Kind != yaml.MappingNode {
		return &Error{File: name, Line: section.Line, Msg: "Mappings is not a mapping"}
	}
	j := findKey(section, mapping)
	if j < 0 {
		section.Content = append(section.Content, strNode(mapping), value)
		return nil
	}
	old := section.Content[j+1]
	value.HeadComment, value.LineComment, value.FootComment = old.HeadComment, old.LineComment, old.FootComment
	value.Anchor = old.Anchor // an alias elsewhere (*amis) must still resolve
	section.Content[j+1] = value
	return nil
}

// findKey returns the index of key's key node in a mapping node, or -1.
func findKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return i
		}
	}
	return -1
}

// insert returns nodes with add inserted at index at.
func insert(nodes []*yaml.Node, at int, add ...*yaml.Node) []*yaml.Node {
	out := make([]*yaml.Node, 0, len(nodes)+len(add))
	out = append(out, nodes[:at]...)
	out = append(out, add...)
	return append(out, nodes[at:]...)
}

// yamlMapping builds {region: {key: ami}} with regions sorted.
func yamlMapping(amis AMIMap, key string) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, region := range amis.regions() {
		entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map",
			Content: []*yaml.Node{strNode(key), strNode(amis[region])}}
		m.Content = append(m.Content, strNode(region), entry)
	}
	return m
}

// strNode is a string scalar; the !!str tag makes the encoder quote values
// that would otherwise read as numbers or booleans.
func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}
