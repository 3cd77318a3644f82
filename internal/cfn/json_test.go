package cfn_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/cfn"
)

// jsonTemplate has what a JSON template's round trip could lose: key order
// that is not sorted, Fn::FindInMap, "&&" and "<" in UserData, "\/", numbers
// beyond float64 and written as 1.0, and an existing mapping to keep.
const jsonTemplate = `  {
  "Description": "parent stack",
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
  "Mappings": {
    "SizeMap": {"dev": {"Type": "t3.micro"}},
    "AMIRegionMap": {"ap-south-1": {"AMI": "ami-stale"}}
  },
  "Resources": {
    "Inst": {
      "Type": "AWS::EC2::Instance",
      "Properties": {
        "ImageId": {"Fn::FindInMap": ["AMIRegionMap", {"Ref": "AWS::Region"}, "AMI"]},
        "UserData": {"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${Env} && test 1 \u003c 2 && echo a\/b"}},
        "BlockDeviceMappings": [],
        "Monitoring": true,
        "Weight": 1.0,
        "Big": 10000000000000000001,
        "Nothing": null,
        "Note": "café ☕"
      }
    }
  }
}
`

func TestInjectJSON(t *testing.T) {
	out, err := cfn.Inject("app.json", []byte(jsonTemplate), amis, cfn.Options{})
	require.NoError(t, err)
	require.True(t, json.Valid(out), "valid JSON:\n%s", out)

	// Two-space indent, authors' key order, no HTML escaping.
	s := string(out)
	assert.True(t, strings.HasPrefix(s, "{\n  \"Description\": \"parent stack\",\n  \"AWSTemplateFormatVersion\""), s)
	assert.Contains(t, s, `"Fn::FindInMap": [`+"\n"+`            "AMIRegionMap",`)
	assert.Contains(t, s, `&& test 1 < 2 && echo a/b`)
	assert.Contains(t, s, `"Weight": 1.0,`)
	assert.Contains(t, s, `"Big": 10000000000000000001,`)
	assert.Contains(t, s, `"BlockDeviceMappings": [],`)
	assert.Contains(t, s, `"Note": "café ☕"`)
	assertOrder(t, s, `"Description"`, `"AWSTemplateFormatVersion"`, `"Parameters"`, `"Mappings"`,
		`"SizeMap"`, `"AMIRegionMap"`, `"eu-west-1"`, `"us-east-1"`, `"us-west-2"`, `"Resources"`)
	assert.NotContains(t, s, "ami-stale")

	// Everything but the injected mapping is equal.
	before, after := decode(t, []byte(jsonTemplate)), decode(t, out)
	mappings := after["Mappings"].(map[string]any)
	assert.Equal(t, map[string]any{
		"eu-west-1": map[string]any{"AMI": "ami-0e1"},
		"us-east-1": map[string]any{"AMI": "ami-0a1"},
		"us-west-2": map[string]any{"AMI": "ami-0b2"},
	}, mappings["AMIRegionMap"])
	delete(mappings, "AMIRegionMap")
	delete(before["Mappings"].(map[string]any), "AMIRegionMap")
	assert.Equal(t, before, after)

	again, err := cfn.Inject("app.json", out, amis, cfn.Options{})
	require.NoError(t, err)
	assert.Equal(t, s, string(again), "Inject twice == once")
}

func TestInjectJSONAddsMappingsAfterParameters(t *testing.T) {
	src := `{"AWSTemplateFormatVersion": "2010-09-09", "Parameters": {}, "Resources": {}}`
	out, err := cfn.Inject("app.json", []byte(src), cfn.AMIMap{"us-east-1": "ami-1"}, cfn.Options{Key: "HVM64"})
	require.NoError(t, err)
	assert.Equal(t, `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {},
  "Mappings": {
    "AMIRegionMap": {
      "us-east-1": {
        "HVM64": "ami-1"
      }
    }
  },
  "Resources": {}
}
`, string(out))
}

func TestInjectJSONErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"MappingsArray", "{\n  \"Resources\": {},\n  \"Mappings\": []\n}", "app.json: Mappings is not an object (line 3)"},
		{"Syntax", "{\n  \"Resources\": {\n    \"A\": 1,\n  }\n}", "app.json: not valid JSON: invalid character '}'"},
		{"Truncated", "{\n  \"Resources\": {", "app.json: not valid JSON: unexpected EOF (line 2)"},
		{"Trailing", "{}\n{}", "app.json: not valid JSON: unexpected data after the top-level object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cfn.Inject("app.json", []byte(tt.src), amis, cfn.Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := cfn.Inject("app.json", []byte("{\n  \"A\": {\n    \"B\": 1,\n  }\n}"), amis, cfn.Options{})
	assert.Contains(t, err.Error(), "(line 4)", "syntax errors carry their line")
}

func TestParametersFile(t *testing.T) {
	out, err := cfn.ParametersFile(amis, cfn.Options{Region: "eu-west-1"})
	require.NoError(t, err)
	assert.JSONEq(t, `[{"ParameterKey": "AMI", "ParameterValue": "ami-0e1"}]`, string(out))

	out, err = cfn.ParametersFile(amis, cfn.Options{Region: "us-west-2", ParameterName: "ImageId"})
	require.NoError(t, err)
	assert.JSONEq(t, `[{"ParameterKey": "ImageId", "ParameterValue": "ami-0b2"}]`, string(out))

	_, err = cfn.ParametersFile(amis, cfn.Options{Region: "sa-east-1"})
	assert.EqualError(t, err, `the AMI map has no AMI for region "sa-east-1" (it has eu-west-1, us-east-1, us-west-2)`)
	_, err = cfn.ParametersFile(cfn.AMIMap{}, cfn.Options{Region: "us-east-1"})
	assert.EqualError(t, err, "the AMI map is empty")
}

// decode parses JSON keeping numbers as written.
func decode(t *testing.T, src []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v map[string]any
	require.NoError(t, dec.Decode(&v))
	return v
}

// assertOrder checks that the strings appear in s in this order.
func assertOrder(t *testing.T, s string, in ...string) {
	t.Helper()
	last := -1
	for _, w := range in {
		i := strings.Index(s, w)
		require.Greater(t, i, last, "%s out of order", w)
		last = i
	}
}
