// Package cfn publishes the AMIs a run baked to the CloudFormation templates
// that launch them: it writes the region → AMI map into each template's
// Mappings section (or a parameters file) and uploads the result to S3 under
// the branch or tag that was built, the way MozDef's CI publishes
// mozdef-parent.yml to s3://<bucket>/<branch or tag>/.
//
// Templates are edited, not regenerated: YAML goes through yaml.v3 nodes so
// short-form intrinsics (!Ref, !Sub, !GetAtt, ...), key order and comments
// survive, and JSON goes through an order-keeping token decoder.
package cfn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Defaults for Options fields left empty.
const (
	DefaultMappingName   = "AMIRegionMap"
	DefaultKey           = "AMI"
	DefaultParameterName = "AMI"
)

// AMIMap is region → AMI ID. The caller picks one account's column from
// kiln's account → region → AMI map: a template is launched in one account.
type AMIMap map[string]string

// Options says where in a template the AMIs go.
type Options struct {
	// MappingName is the mapping under Mappings that Inject writes; templates
	// read it with !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI].
	// Default "AMIRegionMap".
	MappingName string
	// Key is the second-level key of each region in the mapping. Default "AMI".
	Key string
	// ParametersFile asks Render to also produce a parameters file for Region,
	// for templates that take the AMI as a parameter instead of a mapping.
	ParametersFile bool
	// ParameterName is the parameter the parameters file sets. Default "AMI".
	ParameterName string
	// Region picks the AMI the parameters file passes.
	Region string
}

// Error is a problem with a template, the AMI map or the options. Retrying
// cannot fix it; activities should return it as a non-retryable error.
type Error struct {
	// File is the template's name as given to Inject; empty for problems
	// that are not about one template.
	File string
	// Line is 1-based; 0 when the problem has no single line.
	Line int
	// Msg says what is wrong, for people.
	Msg string
}

// Error reads "app.yaml: Mappings is not a mapping (line 12)".
func (e *Error) Error() string {
	msg := e.Msg
	if e.File != "" {
		msg = e.File + ": " + msg
	}
	if e.Line > 0 {
		msg += fmt.Sprintf(" (line %d)", e.Line)
	}
	return msg
}

var (
	// regionRE matches AWS region names (us-east-1, us-gov-west-1,
	// us-isob-east-1). It catches an account ID passed where a region belongs.
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// nameRE is what CloudFormation accepts for mapping and parameter names.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	// keyRE is what CloudFormation accepts for second-level mapping keys.
	keyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// withDefaults fills empty fields and rejects names CloudFormation refuses.
func (o Options) withDefaults() (Options, error) {
	if o.MappingName == "" {
		o.MappingName = DefaultMappingName
	}
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.ParameterName == "" {
		o.ParameterName = DefaultParameterName
	}
	switch {
	case !nameRE.MatchString(o.MappingName):
		return o, &Error{Msg: fmt.Sprintf("mapping name %q must be alphanumeric", o.MappingName)}
	case !keyRE.MatchString(o.Key):
		return o, &Error{Msg: fmt.Sprintf("mapping key %q must be alphanumeric (or - _ .)", o.Key)}
	case !nameRE.MatchString(o.ParameterName):
		return o, &Error{Msg: fmt.Sprintf("parameter name %q must be alphanumeric", o.ParameterName)}
	}
	return o, nil
}

// validate rejects a map that would publish a template nobody can launch.
func (m AMIMap) validate() error {
	if len(m) == 0 {
		return &Error{Msg: "the AMI map is empty"}
	}
	for _, region := range m.regions() {
		if !regionRE.MatchString(region) {
			return &Error{Msg: fmt.Sprintf("the AMI map has %q, which is not an AWS region", region)}
		}
		if !strings.HasPrefix(m[region], "ami-") {
			return &Error{Msg: fmt.Sprintf("the AMI map has %q for %s, which is not an AMI ID", m[region], region)}
		}
	}
	return nil
}

// regions returns the map's regions sorted, so output is the same every run.
func (m AMIMap) regions() []string {
	rs := make([]string, 0, len(m))
	for r := range m {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return rs
}

// Inject returns the template with Mappings.<MappingName> set to the AMI map:
// {us-east-1: {AMI: ami-1}, ...}, regions sorted. An existing mapping of that
// name is replaced; every other key, comment and intrinsic function is kept.
// A template without Mappings gets one after Parameters (or whichever of
// AWSTemplateFormatVersion, Description, Metadata, Parameters, Rules comes
// last). The format is JSON if the first non-space byte is '{', else YAML;
// the result is in the same format. Errors are *Error and name the template.
func Inject(name string, src []byte, amis AMIMap, o Options) ([]byte, error) {
	o, err := o.withDefaults()
	if err == nil {
		err = amis.validate()
	}
	if err != nil {
		err.(*Error).File = name
		return nil, err
	}
	src = bytes.TrimPrefix(src, []byte("\ufeff")) // editors on Windows add a BOM
	if isJSON(src) {
		return injectJSON(name, src, amis, o)
	}
	return injectYAML(name, src, amis, o)
}

// isJSON reports whether src looks like a JSON template.
func isJSON(src []byte) bool {
	trimmed := bytes.TrimLeft(src, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// mappingsBefore are the top-level sections CloudFormation documents ahead of
// Mappings; a new Mappings goes after the last of them present.
var mappingsBefore = map[string]bool{
	"AWSTemplateFormatVersion": true, "Description": true, "Metadata": true,
	"Parameters": true, "Rules": true,
}

// parameter is one entry of a CloudFormation parameters file.
type parameter struct {
	ParameterKey   string
	ParameterValue string
}

// ParametersFile returns a CloudFormation parameters file passing the AMI of
// o.Region as o.ParameterName:
// [{"ParameterKey": "AMI", "ParameterValue": "ami-…"}].
func ParametersFile(amis AMIMap, o Options) ([]byte, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := amis.validate(); err != nil {
		return nil, err
	}
	if o.Region == "" {
		return nil, &Error{Msg: "no region to write the parameters file for"}
	}
	ami, ok := amis[o.Region]
	if !ok {
		return nil, &Error{Msg: fmt.Sprintf("the AMI map has no AMI for region %q (it has %s)",
			o.Region, strings.Join(amis.regions(), ", "))}
	}
	out, err := json.MarshalIndent([]parameter{{o.ParameterName, ami}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
