package buildspec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser collects every problem in a file rather than stopping at the first,
// so one run of the linter shows the author all that needs fixing.
type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// err returns nil, the single *Error (so errors.As is trivial), or all of them joined.
func (p *parser) err() error {
	if len(p.errs) == 1 {
		return p.errs[0]
	}
	return errors.Join(p.errs...)
}

// yamlLine pulls the line out of yaml.v3's syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML syntax error into an *Error carrying its line.
func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// deref follows YAML aliases (*anchor) to the node they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// section describes the keys a mapping may hold, so unknown and unsupported
// keys are reported the same way everywhere.
type section struct {
	// known maps each accepted key to the function that reads its value.
	known map[string]func(key, val *yaml.Node)
	// unsupported maps keys CodeBuild has but kiln does not to the reason.
	unsupported map[string]string
	// order lists known keys for the "expected one of" hint.
	order []string
	// each, when set, reads every key: for maps of user-chosen names.
	each func(key, val *yaml.Node)
}

// mapping walks a mapping node; a null value counts as an empty mapping so a
// section left empty is reported by its required keys rather than as a type error.
func (p *parser) mapping(n *yaml.Node, field string, s section) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, field, "must be a mapping")
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		name := joinField(field, k.Value)
		if first, dup := seen[k.Value]; dup {
			p.errorf(k, name, "appears twice (first on line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if s.each != nil {
			s.each(k, v)
		} else if read, ok := s.known[k.Value]; ok {
			read(k, v)
		} else if why, ok := s.unsupported[k.Value]; ok {
			p.errorf(k, name, "%s", why)
		} else {
			p.errorf(k, name, "unknown field; expected one of: %s", strings.Join(s.order, ", "))
		}
	}
}

// scalar reads a non-null scalar as text: YAML may type `name: 12` as a number,
// but a buildspec means the text.
func (p *parser) scalar(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, field, "must be a string")
		return "", false
	}
	return n.Value, true
}

// stringList reads a list of scalars, returning each item's node too so later
// checks can name its line. scalarOK also accepts one bare scalar, as CodeBuild
// does for exclude-paths.
func (p *parser) stringList(n *yaml.Node, field string, scalarOK bool) ([]string, []*yaml.Node) {
	if scalarOK && n.Kind == yaml.ScalarNode && !isNull(n) {
		return []string{n.Value}, []*yaml.Node{n}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, field, "must be a list of strings")
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for _, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			// A common cause: `- echo a: b` parses as a mapping; quote the command.
			p.errorf(item, field, "must be a list of strings (quote items containing \": \")")
			continue
		}
		out = append(out, item.Value)
		nodes = append(nodes, item)
	}
	return out, nodes
}

// boolean reads CodeBuild's yes/no flags; YAML 1.2 would read "yes" as a string.
func (p *parser) boolean(n *yaml.Node, field string) bool {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "yes", "true", "on":
			return true
		case "no", "false", "off":
			return false
		}
	}
	p.errorf(n, field, "must be yes or no")
	return false
}

// validName reports whether s is a shell variable name. Names are the only
// buildspec text kiln writes into shell code, so this check guards injection.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
