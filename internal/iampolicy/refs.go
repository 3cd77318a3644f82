package iampolicy

import "github.com/kiln-ci/kiln/internal/config"

// refs are the SSM parameters and launch templates distribute targets
// point at their AMIs, as resources of the principal that updates them.
type refs struct {
	params, paramRegions       []string // parameter ARNs, and their regions
	templates, templateRegions []string // launch-template/* ARNs, and their regions
}

// add records what t updates in each of its regions, in its account.
func (r *refs) add(t config.Target) {
	for _, reg := range t.Regions {
		if t.SSMParameter != "" {
			// The name starts with "/", which the ARN keeps after "parameter".
			r.params = append(r.params, "arn:aws:ssm:"+reg.Region+":"+t.Account+":parameter"+t.SSMParameter)
			r.paramRegions = append(r.paramRegions, reg.Region)
		}
		if t.LaunchTemplate != nil {
			r.templates = append(r.templates, "arn:aws:ec2:"+reg.Region+":"+t.Account+":launch-template/*")
			r.templateRegions = append(r.templateRegions, reg.Region)
		}
	}
}

// statements grant the updates. Parameter Store checks an aws:ec2:image
// value with the caller's ec2:DescribeImages. Launch templates have no name
// in their ARNs, so the account's templates in the regions are granted;
// DescribeLaunchTemplateVersions takes no resource at all. prefix keeps the
// Sids apart from the other statements of the document.
func (r refs) statements(prefix string) []Statement {
	var st []Statement
	if len(r.params) > 0 {
		st = append(st,
			Statement{Sid: prefix + "PointsTheTargetParametersAtTheAmi", Action: []string{"ssm:GetParameter", "ssm:PutParameter"},
				Resource: set(r.params)},
			Statement{Sid: prefix + "ParameterStoreChecksTheAmiAnyResourceAsDescribeImagesHasNoArnsRegionLimited",
				Action: ec2("DescribeImages"), Resource: anyResource, Condition: inRegions(r.paramRegions...)})
	}
	if len(r.templates) > 0 {
		st = append(st,
			Statement{Sid: prefix + "ReadsLaunchTemplateVersionsAnyResourceAsDescribeHasNoArnsRegionLimited",
				Action: ec2("DescribeLaunchTemplateVersions"), Resource: anyResource, Condition: inRegions(r.templateRegions...)},
			Statement{Sid: prefix + "AddsLaunchTemplateVersionsAnyTemplateInRegionAsArnsHaveNoNames",
				Action: ec2("CreateLaunchTemplateVersion", "ModifyLaunchTemplate"), Resource: set(r.templates)})
	}
	return st
}
