package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/kiln-ci/kiln/schemas"
)

// schemaURL is the $id of schemas/kiln.schema.json.
const schemaURL = "https://kiln-ci.dev/schemas/kiln.schema.json"

// compiledSchema is kiln.schema.json ready to validate with, plus every
// subschema by location, so that errors can name the fields a subschema knows.
type compiledSchema struct {
	root  *jsonschema.Schema
	byLoc map[string]*jsonschema.Schema
}

// kilnSchema compiles the embedded schema once, on first use.
var kilnSchema = sync.OnceValues(func() (*compiledSchema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.KilnSchema))
	if err != nil {
		return nil, fmt.Errorf("reading kiln.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("loading kiln.schema.json: %w", err)
	}
	root, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compiling kiln.schema.json: %w", err)
	}
	cs := &compiledSchema{root: root, byLoc: map[string]*jsonschema.Schema{}}
	cs.index(root)
	return cs, nil
})

// index records s and the subschemas kiln.schema.json uses, by location.
func (cs *compiledSchema) index(s *jsonschema.Schema) {
	if s == nil || cs.byLoc[s.Location] != nil {
		return
	}
	cs.byLoc[s.Location] = s
	subs := append([]*jsonschema.Schema{s.Ref, s.Items2020, s.PropertyNames}, s.OneOf...)
	subs = append(subs, s.AnyOf...)
	subs = append(subs, s.AllOf...)
	if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		subs = append(subs, ap)
	}
	for _, p := range s.Properties {
		subs = append(subs, p)
	}
	for _, sub := range subs {
		cs.index(sub)
	}
}

// validateShape checks the tree against kiln.schema.json and reports each
// failure in words, at the line of the value concerned.
func validateShape(t *tree, p *problems) error {
	cs, err := kilnSchema()
	if err != nil {
		return err
	}
	err = cs.root.Validate(t.value)
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		(&translator{schema: cs, tree: t, p: p}).walk(verr, nil)
		return nil
	}
	return err
}

// printer words the rare errors this file does not word itself.
var printer = message.NewPrinter(language.English)

// nouns says what the keys of some objects are, where "field" would be vague:
// `unknown stage "deploy"; known stages: build`.
var nouns = map[string]string{"stages": "stage", "triggers": "trigger"}

// typeWords names JSON types the way a YAML author thinks of them.
var typeWords = map[string]string{
	"object": "a mapping", "array": "a list", "string": "a string",
	"boolean": "a boolean (true or false)", "number": "a number",
	"integer": "a whole number", "null": "empty",
}

// translator turns a jsonschema error tree into ValidationErrors: it descends
// to the leaf causes and words each for people, at its value's line.
type translator struct {
	schema *compiledSchema
	tree   *tree
	p      *problems
}

// walk reports e's leaves. parent is the instance location of e's parent.
func (tr *translator) walk(e *jsonschema.ValidationError, parent []string) {
	loc := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		for _, c := range e.Causes {
			tr.walk(c, loc)
		}
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			tr.add(loc, k.LocalizedString(printer))
			return
		}
		tr.alternatives(e)
	case *kind.AnyOf:
		tr.alternatives(e)
	case *kind.PropertyNames:
		// jsonschema v6.0.3 does not copy the instance location of these
		// errors, so a later error may overwrite it (santhosh-tekuri/jsonschema
		// issue 258, pull request 269). The parent's is right:
		// kiln.schema.json reaches every object with propertyNames through a
		// $ref, and the $ref's error is at the object. A test guards this.
		tr.add(slices.Concat(parent, []string{k.Property}), tr.message(leaf(e)))
	case *kind.Required:
		for _, name := range k.Missing {
			tr.add(loc, "missing required field "+name)
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			tr.add(slices.Concat(loc, []string{name}), tr.unknown(e, name))
		}
	default:
		tr.add(loc, tr.message(e))
	}
}

func (tr *translator) add(loc []string, msg string) {
	tr.p.add(tr.tree.place(loc), "%s", msg)
}

// alternatives reports a oneOf or anyOf none of whose branches matched.
// Branches that failed only on the value's type are dropped, so that
// `buildspec: {}` reports the missing version and not that it is no string;
// when every branch failed on type, the types are listed together.
func (tr *translator) alternatives(e *jsonschema.ValidationError) {
	var want []string
	var got string
	var rest []*jsonschema.ValidationError
	for _, c := range e.Causes {
		if t, ok := leaf(c).ErrorKind.(*kind.Type); ok && slices.Equal(leaf(c).InstanceLocation, e.InstanceLocation) {
			want, got = append(want, t.Want...), t.Got
			continue
		}
		rest = append(rest, c)
	}
	if len(rest) == 0 {
		tr.add(e.InstanceLocation, typeMessage(want, got))
	}
	for _, c := range rest {
		tr.walk(c, e.InstanceLocation)
	}
}

// leaf follows single causes down to the error that says what is wrong.
func leaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) == 1 {
		e = e.Causes[0]
	}
	return e
}

// message words one leaf error, using the failing subschema's title,
// description and properties where they help.
func (tr *translator) message(e *jsonschema.ValidationError) string {
	s := tr.schema.byLoc[e.SchemaURL]
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		return typeMessage(k.Want, k.Got)
	case *kind.Pattern:
		if s != nil && s.Title != "" {
			return fmt.Sprintf("%q is not a valid %s: %s", k.Got, s.Title, lowerFirst(s.Description))
		}
		return fmt.Sprintf("%q does not match %s", k.Got, k.Want)
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
	case *kind.MinItems:
		if k.Want == 1 {
			return "must list at least one entry"
		}
	case *kind.MinProperties:
		if s != nil && s.MaxProperties != nil && *s.MaxProperties == 1 {
			return "needs exactly one of " + orList(known(s))
		}
		return fmt.Sprintf("needs at least one %s: %s", noun(e.SchemaURL), orList(known(s)))
	case *kind.MaxProperties:
		if k.Want == 1 {
			return "give only one of " + orList(known(s))
		}
	}
	return e.ErrorKind.LocalizedString(printer)
}

// unknown words an additionalProperties failure for one key.
func (tr *translator) unknown(e *jsonschema.ValidationError, name string) string {
	n := noun(e.SchemaURL)
	msg := fmt.Sprintf("unknown %s %q", n, name)
	if names := known(tr.schema.byLoc[e.SchemaURL]); len(names) > 0 {
		msg += fmt.Sprintf("; known %ss: %s", n, strings.Join(names, ", "))
	}
	return msg
}

// noun is what the keys of the object schema at loc are called.
func noun(loc string) string {
	_, frag, _ := strings.Cut(loc, "#")
	if n, ok := nouns[strings.TrimPrefix(frag, "/$defs/")]; ok {
		return n
	}
	return "field"
}

// known lists the properties an object schema declares, sorted.
func known(s *jsonschema.Schema) []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.Properties))
}

func typeMessage(want []string, got string) string {
	words := make([]string, len(want))
	for i, w := range want {
		words[i] = typeWords[w]
	}
	return fmt.Sprintf("must be %s, not %s", orList(words), typeWords[got])
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}
