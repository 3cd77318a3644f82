package iampolicy

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
