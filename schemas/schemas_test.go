package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKilnSchemaCompiles(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(KilnSchema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("kiln.schema.json", doc))
	_, err = c.Compile("kiln.schema.json") // also checks it against the 2020-12 metaschema
	require.NoError(t, err)
}

// walk calls fn for every subschema of s reached through properties, $defs,
// items, oneOf and additionalProperties, with its JSON pointer.
func walk(ptr string, s map[string]any, fn func(ptr string, s map[string]any)) {
	fn(ptr, s)
	for _, kw := range []string{"properties", "$defs"} {
		m, _ := s[kw].(map[string]any)
		for name, sub := range m {
			if sub, ok := sub.(map[string]any); ok {
				walk(fmt.Sprintf("%s/%s/%s", ptr, kw, name), sub, fn)
			}
		}
	}
	for _, kw := range []string{"items", "additionalProperties", "propertyNames"} {
		if sub, ok := s[kw].(map[string]any); ok {
			walk(ptr+"/"+kw, sub, fn)
		}
	}
	list, _ := s["oneOf"].([]any)
	for i, sub := range list {
		if sub, ok := sub.(map[string]any); ok {
			walk(fmt.Sprintf("%s/oneOf/%d", ptr, i), sub, fn)
		}
	}
}

func rawSchema(t *testing.T) map[string]any {
	var root map[string]any
	require.NoError(t, json.Unmarshal(KilnSchema, &root))
	return root
}

// TestEveryPropertyIsDocumented holds the schema to being the user docs of
// kiln.yaml: every property and definition says what it is for.
func TestEveryPropertyIsDocumented(t *testing.T) {
	walk("#", rawSchema(t), func(ptr string, s map[string]any) {
		for _, kw := range []string{"properties", "$defs"} {
			m, _ := s[kw].(map[string]any)
			for name, sub := range m {
				desc, _ := sub.(map[string]any)["description"].(string)
				assert.NotEmpty(t, desc, "%s/%s/%s has no description", ptr, kw, name)
			}
		}
	})
}

// TestObjectsRejectUnknownFields makes sure a misspelt field is an error, not
// a silently ignored setting. Inline buildspecs are checked elsewhere.
func TestObjectsRejectUnknownFields(t *testing.T) {
	open := map[string]bool{"#/$defs/inlineBuildspec": true}
	walk("#", rawSchema(t), func(ptr string, s map[string]any) {
		if _, ok := s["properties"]; !ok || open[ptr] {
			return
		}
		assert.Equal(t, false, s["additionalProperties"], "%s accepts unknown fields", ptr)
	})
}

// TestExamplesAreValid keeps the examples given for titled values, which
// error messages point people at, in line with their patterns.
func TestExamplesAreValid(t *testing.T) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(KilnSchema))
	require.NoError(t, err)
	require.NoError(t, c.AddResource("kiln.schema.json", doc))
	defs := rawSchema(t)["$defs"].(map[string]any)
	for name, def := range defs {
		examples, _ := def.(map[string]any)["examples"].([]any)
		if len(examples) == 0 {
			continue
		}
		sch, err := c.Compile("kiln.schema.json#/$defs/" + name)
		require.NoError(t, err)
		for _, ex := range examples {
			assert.NoError(t, sch.Validate(ex), "example %v of %s", ex, name)
		}
	}
}
