package config

import (
	"regexp"
	"strings"
)

// ssmParameterName is what AWS allows in a fully qualified parameter name:
// a leading slash, then path segments of letters, digits, '.', '-' and '_'.
var ssmParameterName = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)

// launchTemplateName is AWS's pattern for launch template names.
var launchTemplateName = regexp.MustCompile(`^[A-Za-z0-9().\-/_]{3,128}$`)

// Limits AWS puts on parameter names.
const (
	maxSSMParameterName   = 1011 // the whole ARN, AWS says; the name is less
	maxSSMParameterLevels = 15
)

// targetUpdates checks a target's ssm_parameter and launch_template: names
// AWS would refuse only when the run gets there, after the copies, and a
// share target that would update an account kiln cannot act in.
func (c *checker) targetUpdates(i, j int, t Target) {
	base := []any{"pipelines", i, "stages", "distribute", "targets", j}
	if name := t.SSMParameter; name != "" {
		if msg := checkSSMParameterName(name); msg != "" {
			c.p.add(c.at(base, "ssm_parameter"), "%q is not a valid SSM parameter name: %s", name, msg)
		}
	}
	if lt := t.LaunchTemplate; lt != nil && !launchTemplateName.MatchString(lt.Name) {
		c.p.add(c.at(base, "launch_template", "name"), "%q is not a valid launch template name: "+
			"3 to 128 letters, digits and ( ) . - / _", lt.Name)
	}
	if t.Updates() && t.Mode == ModeShare && t.Role == "" {
		field, what := "ssm_parameter", "SSM parameter"
		if t.SSMParameter == "" {
			field, what = "launch_template", "launch template"
		}
		c.p.add(c.at(base, field), "account %s is a share target without a role: kiln updates the %s in the "+
			"target's account, so set the target's role to one kiln may assume there", t.Account, what)
	}
}

// checkSSMParameterName says what is wrong with a parameter name, or "".
func checkSSMParameterName(name string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	switch lower := strings.ToLower(first); {
	case !strings.HasPrefix(name, "/"):
		return "start it with / (such as /kiln/app/ami)"
	case !ssmParameterName.MatchString(name):
		return "use /-separated levels of letters, digits, '.', '-' and '_'"
	case strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ssm"):
		return `names starting with "aws" or "ssm" are reserved by AWS`
	case strings.Count(name, "/") > maxSSMParameterLevels:
		return "at most 15 levels"
	case len(name) > maxSSMParameterName:
		return "at most 1011 characters"
	}
	return ""
}
