package iampolicy

import "slices"

// retentionReadActions find a pipeline's AMIs and what uses them; EC2
// gives them no resource-level permissions.
var retentionReadActions = ec2("DescribeImages", "DescribeInstances", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions")

// retentionStatements let a pipeline's lifecycle find its AMIs and what
// uses them in read regions, and retire them in retire regions:
// deprecating, disabling and deleting only images and snapshots tagged
// with the pipeline's name. A share target's account holds none of the
// pipeline's AMIs, only what uses them: it is read, not retired in.
func (g *generator) retentionStatements(sid string, read, retire []string) []Statement {
	if g.p.Lifecycle == nil || len(read)+len(retire) == 0 {
		return nil
	}
	st := []Statement{{Sid: sid + "FindsAMIsAndWhatUsesThemAnyResourceRegionLimited", Action: retentionReadActions,
		Resource: anyResource, Condition: inRegions(append(read, retire...)...)}}
	if len(retire) == 0 {
		return st
	}
	var res []string
	for _, r := range set(retire) {
		res = append(res, "arn:aws:ec2:"+r+"::image/*", "arn:aws:ec2:"+r+"::snapshot/*")
	}
	return append(st, Statement{Sid: sid + "RetiresThisPipelinesAMIsOnly",
		Action:    ec2("EnableImageDeprecation", "DisableImage", "DeregisterImage", "DeleteSnapshot"),
		Resource:  res,
		Condition: Condition{"StringEquals": {"aws:ResourceTag/kiln:pipeline": []string{g.p.Name}}}})
}

// ownRetentionRegions are where the builder's own account holds the
// pipeline's AMIs: the bake and test regions, and every distribution
// region (a share target's copies stay in the builder's account).
func (g *generator) ownRetentionRegions() []string {
	regions := []string{g.bake, g.test}
	if d := g.p.Stages.Distribute; d != nil {
		for _, t := range d.Targets {
			for _, r := range t.Regions {
				regions = append(regions, r.Region)
			}
		}
	}
	return slices.DeleteFunc(regions, func(r string) bool { return r == "" })
}
