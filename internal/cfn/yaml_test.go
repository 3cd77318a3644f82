package cfn_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ci/kiln/internal/cfn"
)

var amis = cfn.AMIMap{"us-west-2": "ami-0b2", "eu-west-1": "ami-0e1", "us-east-1": "ami-0a1"}

// intrinsics uses every short form a template is likely to hold, in block
// and flow style, nested, quoted and as block scalars.
const intrinsics = `AWSTemplateFormatVersion: "2010-09-09"
Description: MozDef-style parent # why this stack exists
Parameters:
  Env:
    Type: String
    AllowedValues: [dev, prod]
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotDev: !Not [!Equals [!Ref Env, dev]]
Resources:
  # the instance reads the AMI kiln injects
  Inst:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI]
      SubnetId: !If [IsProd, !ImportValue prod-subnet, !Ref "AWS::NoValue"]
      AvailabilityZone: !Select [0, !GetAZs '']
      IamInstanceProfile: !GetAtt Profile.Arn
      UserData:
        Fn::Base64: !Sub |
          #!/bin/bash
          echo ${Env} && echo "<x>" > /tmp/y
      Tags:
        - Key: Name
          Value: !Join ["-", [!Ref Env, !GetAtt Other.Arn, 'x']]
        - Key: Stack
          Value: !Sub "${AWS::StackName}-inst"
        - Key: Base
          Value: !Base64 plain
        - Key: Split
          Value: !Select [1, !Split [",", !Ref Env]]
Outputs:
  Id:
    Value: !Ref Inst # trailing comment
    Export: {Name: !Sub "${AWS::StackName}-id"}
`

const existing = `AWSTemplateFormatVersion: "2010-09-09"
Mappings:
  # sizes per environment
  SizeMap:
    dev: {Type: t3.micro}
    prod: {Type: m5.large}
  AMIRegionMap: # replaced by kiln
    ap-south-1:
      AMI: ami-stale
Resources:
  Inst:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI]
      InstanceType: !FindInMap [SizeMap, !Ref Env, Type]
`

func TestInjectYAML(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		opts     cfn.Options
		topKeys  string // top-level keys in order
		mappings string // keys under Mappings in order
		comments []string
	}{
		{"IntrinsicsAfterParameters", intrinsics, cfn.Options{},
			"AWSTemplateFormatVersion Description Parameters Mappings Conditions Resources Outputs",
			"AMIRegionMap", []string{"# why this stack exists", "# the instance reads", "# trailing comment"}},
		{"ExistingMappingReplacedOthersKept", existing, cfn.Options{},
			"AWSTemplateFormatVersion Mappings Resources", "SizeMap AMIRegionMap",
			[]string{"# sizes per environment", "# replaced by kiln"}},
		{"CustomNameAppended", existing, cfn.Options{MappingName: "Images", Key: "HVM64"},
			"AWSTemplateFormatVersion Mappings Resources", "SizeMap AMIRegionMap Images", nil},
		{"AfterDescription", "Description: d\nResources:\n  Q: {Type: AWS::SQS::Queue}\n", cfn.Options{},
			"Description Mappings Resources", "AMIRegionMap", nil},
		{"FirstWhenNoHeader", "Resources:\n  Q: {Type: AWS::SQS::Queue}\n", cfn.Options{},
			"Mappings Resources", "AMIRegionMap", nil},
		{"EmptyMappings", "Mappings:\nResources:\n  Q: {Type: AWS::SQS::Queue}\n", cfn.Options{},
			"Mappings Resources", "AMIRegionMap", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cfn.Inject("app.yaml", []byte(tt.src), amis, tt.opts)
			require.NoError(t, err)
			before, after := parse(t, []byte(tt.src)), parse(t, out)

			name, key := or(tt.opts.MappingName, "AMIRegionMap"), or(tt.opts.Key, "AMI")
			assert.Equal(t, tt.topKeys, keys(after), "top-level order")
			mappings := value(after, "Mappings")
			assert.Equal(t, tt.mappings, keys(mappings), "Mappings order")
			var got map[string]map[string]string
			require.NoError(t, value(mappings, name).Decode(&got))
			assert.Equal(t, map[string]map[string]string{
				"eu-west-1": {key: "ami-0e1"}, "us-east-1": {key: "ami-0a1"}, "us-west-2": {key: "ami-0b2"},
			}, got)
			assert.Equal(t, "eu-west-1 us-east-1 us-west-2", keys(value(mappings, name)), "regions sorted")

			// Everything but the injected mapping is node-for-node the same:
			// tags, values and quoting.
			assert.Equal(t, dump(before, name), dump(after, name))
			for _, c := range tt.comments {
				assert.Contains(t, string(out), c)
			}

			again, err := cfn.Inject("app.yaml", out, amis, tt.opts)
			require.NoError(t, err)
			assert.Equal(t, string(out), string(again), "Inject twice == once")
		})
	}
}

func TestInjectYAMLKeepsShortForms(t *testing.T) {
	out, err := cfn.Inject("app.yaml", []byte(intrinsics), amis, cfn.Options{})
	require.NoError(t, err)
	d := dump(parse(t, out), "AMIRegionMap")
	for _, want := range []string{
		`Resources.Inst.Properties.ImageId !FindInMap`,
		`Resources.Inst.Properties.ImageId.0 !!str "AMIRegionMap"`,
		`Resources.Inst.Properties.ImageId.1 !Ref "AWS::Region"`,
		`Resources.Inst.Properties.IamInstanceProfile !GetAtt "Profile.Arn"`,
		`Resources.Inst.Properties.UserData.Fn::Base64 !Sub "#!/bin/bash\necho ${Env} && echo \"<x>\" > /tmp/y\n"`,
		`Resources.Inst.Properties.Tags.0.Value !Join`,
		`Resources.Inst.Properties.Tags.0.Value.1.1 !GetAtt "Other.Arn"`,
		`Resources.Inst.Properties.Tags.1.Value !Sub "${AWS::StackName}-inst"`,
		`Resources.Inst.Properties.Tags.3.Value.1 !Split`,
		`Resources.Inst.Properties.SubnetId !If`,
		`Resources.Inst.Properties.SubnetId.1 !ImportValue "prod-subnet"`,
		`Resources.Inst.Properties.AvailabilityZone.1 !GetAZs ""`,
		`Conditions.NotDev.0 !Equals`,
		`Outputs.Id.Value !Ref "Inst"`,
	} {
		assert.Contains(t, d, want+"\n")
	}
	// The text keeps the author's forms, not just their meaning.
	for _, want := range []string{
		`ImageId: !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI]`,
		`Value: !Join ["-", [!Ref Env, !GetAtt Other.Arn, 'x']]`,
		"Fn::Base64: !Sub |\n          #!/bin/bash\n",
		`Export: {Name: !Sub "${AWS::StackName}-id"}`,
		"Mappings:\n  AMIRegionMap:\n    eu-west-1:\n      AMI: ami-0e1\n",
	} {
		assert.Contains(t, string(out), want)
	}
}

func TestInjectYAMLKeepsAnchorOfReplacedMapping(t *testing.T) {
	src := "Mappings:\n  AMIRegionMap: &amis\n    ap-south-1: {AMI: ami-stale}\n  Copy: *amis\nResources: {}\n"
	out, err := cfn.Inject("app.yaml", []byte(src), amis, cfn.Options{})
	require.NoError(t, err)
	var got map[string]map[string]map[string]string
	require.NoError(t, value(parse(t, out), "Mappings").Decode(&got))
	assert.Equal(t, got["AMIRegionMap"], got["Copy"], "the alias follows the new mapping:\n%s", out)
	assert.Equal(t, "ami-0e1", got["Copy"]["eu-west-1"]["AMI"])
}

func TestInjectYAMLErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"MappingsList", "Resources: {}\nMappings:\n  - a\n", "app.yaml: Mappings is not a mapping (line 3)"},
		{"NotYAML", "Resources:\n  A: [1, 2\n", "app.yaml: not valid YAML: did not find expected ',' or ']'"},
		{"NotMapping", "- a\n", "app.yaml: the template is not a YAML mapping (line 1)"},
		{"Empty", "  \n", "app.yaml: the template is empty"},
		{"TwoDocuments", "a: 1\n---\nb: 2\n", "app.yaml: the template has more than one YAML document (line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cfn.Inject("app.yaml", []byte(tt.src), amis, cfn.Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var e *cfn.Error
			assert.ErrorAs(t, err, &e)
		})
	}
}

func TestInjectRejectsBadInput(t *testing.T) {
	src := []byte("Resources: {}\n")
	for _, tt := range []struct {
		amis cfn.AMIMap
		opts cfn.Options
		want string
	}{
		{nil, cfn.Options{}, "app.yaml: the AMI map is empty"},
		{cfn.AMIMap{"123456789012": "ami-1"}, cfn.Options{}, `"123456789012", which is not an AWS region`},
		{cfn.AMIMap{"us-east-1": ""}, cfn.Options{}, `"" for us-east-1, which is not an AMI ID`},
		{amis, cfn.Options{MappingName: "AMI-Map"}, `mapping name "AMI-Map" must be alphanumeric`},
	} {
		_, err := cfn.Inject("app.yaml", src, tt.amis, tt.opts)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
}

// parse returns the template's top-level mapping node.
func parse(t *testing.T, src []byte) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(src, &doc))
	return doc.Content[0]
}

// value returns the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// keys lists a mapping's keys in order.
func keys(m *yaml.Node) string {
	var ks []string
	for i := 0; i < len(m.Content); i += 2 {
		ks = append(ks, m.Content[i].Value)
	}
	return strings.Join(ks, " ")
}

// dump walks the tree and prints one line per node: its path, its tag (the
// short-form intrinsic, or the resolved !!str, !!int, ...) and its value, which
// together are the node's meaning. It skips Mappings.<skip>, and Mappings
// itself when that is all it holds or it was empty.
func dump(n *yaml.Node, skip string) string {
	var b strings.Builder
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		if path == "Mappings."+skip || (path == "Mappings" && (keys(n) == skip || n.Tag == "!!null")) {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			fmt.Fprintf(&b, "%s %s %q\n", path, n.Tag, n.Value)
		case yaml.MappingNode:
			fmt.Fprintf(&b, "%s %s\n", path, n.Tag)
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(strings.TrimPrefix(path+"."+n.Content[i].Value, "."), n.Content[i+1])
			}
		case yaml.SequenceNode:
			fmt.Fprintf(&b, "%s %s\n", path, n.Tag)
			for i, c := range n.Content {
				walk(fmt.Sprintf("%s.%d", path, i), c)
			}
		}
	}
	walk("", n)
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
