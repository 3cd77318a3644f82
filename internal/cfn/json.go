package cfn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A JSON template is held as an ordered tree so the output lists keys in the
// author's order: encoding/json's maps would sort them. Values are
// *jsonObject, []any, string, json.Number (the literal as written), bool or
// nil. yaml.v3 cannot stand in here: it rejects valid JSON such as "\/".
type jsonObject struct {
	members []jsonMember
}

// jsonMember is one key of an object; line is where the key was written.
type jsonMember struct {
	key   string
	line  int
	value any
}

// find returns the index of key, or -1.
func (o *jsonObject) find(key string) int {
	for i, m := range o.members {
		if m.key == key {
			return i
		}
	}
	return -1
}

// injectJSON is injectYAML for JSON templates; output is indented by two
// spaces and ends in a newline.
func injectJSON(name string, src []byte, amis AMIMap, o Options) ([]byte, error) {
	top, err := parseJSON(name, src)
	if err != nil {
		return nil, err
	}
	value := &jsonObject{}
	for _, region := range amis.regions() {
		entry := &jsonObject{members: []jsonMember{{key: o.Key, value: amis[region]}}}
		value.members = append(value.members, jsonMember{key: region, value: entry})
	}
	i := top.find("Mappings")
	if i < 0 {
		at := 0
		for k, m := range top.members {
			if mappingsBefore[m.key] {
				at = k + 1
			}
		}
		section := &jsonObject{members: []jsonMember{{key: o.MappingName, value: value}}}
		top.members = append(top.members[:at],
			append([]jsonMember{{key: "Mappings", value: section}}, top.members[at:]...)...)
	} else {
		section, ok := top.members[i].value.(*jsonObject)
		if !ok {
			return nil, &Error{File: name, Line: top.members[i].line, Msg: "Mappings is not an object"}
		}
		if j := section.find(o.MappingName); j >= 0 {
			section.members[j].value = value
		} else {
			section.members = append(section.members, jsonMember{key: o.MappingName, value: value})
		}
	}
	var out bytes.Buffer
	writeJSON(&out, top, "")
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// jsonParser reads a template token by token.
type jsonParser struct {
	src []byte
	dec *json.Decoder
}

// parseJSON returns the template's top-level object.
func parseJSON(name string, src []byte) (*jsonObject, error) {
	p := &jsonParser{src: src, dec: json.NewDecoder(bytes.NewReader(src))}
	p.dec.UseNumber()
	v, err := p.value()
	if err == nil {
		if _, extra := p.dec.Token(); !errors.Is(extra, io.EOF) {
			err = fmt.Errorf("unexpected data after the top-level object")
		}
	}
	if err != nil {
		e := &Error{File: name, Line: p.line(p.dec.InputOffset()), Msg: "not valid JSON: " + err.Error()}
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			e.Line = p.line(syn.Offset)
		}
		return nil, e
	}
	top, ok := v.(*jsonObject)
	if !ok {
		return nil, &Error{File: name, Line: 1, Msg: "the template is not a JSON object"}
	}
	return top, nil
}

// line converts a byte offset into a 1-based line number.
func (p *jsonParser) line(offset int64) int {
	if offset > int64(len(p.src)) {
		offset = int64(len(p.src))
	}
	return bytes.Count(p.src[:offset], []byte("\n")) + 1
}

// token reads the next token; the template cannot end inside a value.
func (p *jsonParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

// value reads the next value, recursing into objects and arrays.
func (p *jsonParser) value() (any, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := &jsonObject{}
		for p.dec.More() {
			key, err := p.token()
			if err != nil {
				return nil, err
			}
			line := p.line(p.dec.InputOffset())
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			obj.members = append(obj.members, jsonMember{key: key.(string), line: line, value: v})
		}
		_, err := p.token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for p.dec.More() {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := p.token() // ']'
		return arr, err
	}
	return tok, nil
}

// writeJSON writes v the way json.MarshalIndent(v, "", "  ") would, but in
// the tree's key order and without escaping <, > and & (UserData scripts are
// full of &&, and \u0026\u0026 is hard to review).
func writeJSON(b *bytes.Buffer, v any, indent string) {
	inner := indent + "  "
	switch v := v.(type) {
	case *jsonObject:
		if len(v.members) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, m := range v.members {
			b.WriteString(inner)
			writeString(b, m.key)
			b.WriteString(": ")
			writeJSON(b, m.value, inner)
			if i < len(v.members)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range v {
			b.WriteString(inner)
			writeJSON(b, e, inner)
			if i < len(v)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case string:
		writeString(b, v)
	case json.Number:
		b.WriteString(v.String())
	case bool:
		fmt.Fprint(b, v)
	case nil:
		b.WriteString("null")
	}
}

// writeString writes s as a JSON string without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode adds a newline
}
