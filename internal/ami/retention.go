package ami

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Retention's actions on an image, in EC2's order.
const (
	ActionKeep      = "keep"
	ActionDeprecate = "deprecate"
	ActionDisable   = "disable"
	ActionDelete    = "delete"
)

// Policy is how long the AMIs of one ref live. Ages count from the bake:
// a copy ages with the AMI it was copied from.
type Policy struct {
	// Keep is how many of the ref's newest bakes are never touched, and
	// KeepFor how long any bake is.
	Keep    int
	KeepFor time.Duration
	// The ages of the steps; zero skips one.
	DeprecateAfter, DisableAfter, DeleteAfter time.Duration
}

// Decision is what retention does to one image, and why.
type Decision struct {
	Image  Image  `json:"image"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// Plan decides, for every image of a pipeline in every account and
// region, what retention does now. Images are grouped into bakes by their
// kiln:run tag (copies carry their bake's), and a bake's age is its oldest
// image's. Kept whatever their age: a ref's newest policy.Keep bakes, bakes
// younger than KeepFor, images still pending, and images inUse names (a
// launch template's version, an SSM parameter, a running instance, a
// dependent's base), with the reason. Other images take the furthest step
// their age calls for that they have not taken yet.
func Plan(images []Image, policyFor func(ref string) Policy, inUse map[string]string, now time.Time) []Decision {
	type bake struct {
		run, ref string
		born     time.Time
		images   []Image
	}
	bakes := map[string]*bake{}
	for _, im := range images {
		key := im.Run
		if key == "" {
			key = "image:" + im.Account + "/" + im.Region + "/" + im.ID // no run: a bake of its own
		}
		b := bakes[key]
		if b == nil {
			b = &bake{run: key, ref: im.Ref, born: im.Created}
			bakes[key] = b
		}
		if !im.Created.IsZero() && (b.born.IsZero() || im.Created.Before(b.born)) {
			b.born = im.Created
		}
		b.images = append(b.images, im)
	}
	// The newest bakes of each ref first.
	byRef := map[string][]*bake{}
	for _, b := range bakes {
		byRef[b.ref] = append(byRef[b.ref], b)
	}
	var out []Decision
	for _, ref := range slices.Sorted(maps.Keys(byRef)) {
		list := byRef[ref]
		slices.SortFunc(list, func(x, y *bake) int {
			return cmp.Or(y.born.Compare(x.born), cmp.Compare(x.run, y.run))
		})
		p := policyFor(ref)
		for n, b := range list {
			age := now.Sub(b.born)
			for _, im := range b.images {
				action, reason := ActionKeep, ""
				switch why, used := inUse[im.ID]; {
				case used:
					reason = "in use: " + why
				case n < p.Keep:
					reason = fmt.Sprintf("one of the %d newest of %s", p.Keep, refOrNone(ref))
				case age < p.KeepFor:
					reason = fmt.Sprintf("younger than %s", days(p.KeepFor))
				case im.State == string(ec2types.ImageStatePending):
					reason = "still pending"
				default:
					action, reason = step(im, p, age, now)
				}
				out = append(out, Decision{Image: im, Action: action, Reason: reason})
			}
		}
	}
	slices.SortFunc(out, func(x, y Decision) int {
		return cmp.Or(x.Image.Created.Compare(y.Image.Created), cmp.Compare(x.Image.Account, y.Image.Account),
			cmp.Compare(x.Image.Region, y.Image.Region), cmp.Compare(x.Image.ID, y.Image.ID))
	})
	return out
}

// step is the furthest step an image of this age is due that it has not
// taken yet.
func step(im Image, p Policy, age time.Duration, now time.Time) (string, string) {
	due := func(after time.Duration) bool { return after > 0 && age >= after }
	switch {
	case due(p.DeleteAfter):
		return ActionDelete, "older than " + days(p.DeleteAfter)
	case due(p.DisableAfter) && im.State != string(ec2types.ImageStateDisabled):
		return ActionDisable, "older than " + days(p.DisableAfter)
	case due(p.DeprecateAfter) && (im.Deprecated.IsZero() || im.Deprecated.After(now)) && im.State != string(ec2types.ImageStateDisabled):
		return ActionDeprecate, "older than " + days(p.DeprecateAfter)
	}
	return ActionKeep, "no step due"
}

func refOrNone(ref string) string {
	if ref == "" {
		return "its untagged ref"
	}
	return ref
}

// days writes whole days as "30d".
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// InUse returns what in the client's account and region uses which AMI:
// the default and latest versions of every launch template, running (or
// stopped) instances, and the AMIs other bakes were given as their base.
// ParametersInUse adds the values of the SSM parameters kiln sets.
func InUse(ctx context.Context, c EC2API, region string) (map[string]string, error) {
	used := map[string]string{}
	if err := launchTemplatesInUse(ctx, c, region, used); err != nil {
		return nil, err
	}
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"),
		Values: []string{"pending", "running", "stopping", "stopped"}}}}
	for {
		page, err := c.DescribeInstances(ctx, in)
		if err != nil {
			return nil, awsx.Classify(err, "list the instances in "+region)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				if id := aws.ToString(inst.ImageId); id != "" && used[id] == "" {
					used[id] = "instance " + aws.ToString(inst.InstanceId)
				}
			}
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	children, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{TagParent}}}})
	if err != nil {
		return nil, awsx.Classify(err, "list the AMIs built on others in "+region)
	}
	for _, img := range children.Images {
		tags := tagValues(img.Tags)
		if parent := tags[TagParent]; parent != "" && tags[TagParentRegion] == region && used[parent] == "" {
			used[parent] = fmt.Sprintf("the base of %s (%s)", aws.ToString(img.ImageId), tags[TagPipeline])
		}
	}
	return used, nil
}

func launchTemplatesInUse(ctx context.Context, c EC2API, region string, used map[string]string) error {
	in := &ec2.DescribeLaunchTemplatesInput{}
	for {
		page, err := c.DescribeLaunchTemplates(ctx, in)
		if err != nil {
			return awsx.Classify(err, "list the launch templates in "+region)
		}
		for _, lt := range page.LaunchTemplates {
			versions, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
				LaunchTemplateId: lt.LaunchTemplateId, Versions: []string{"$Default", "$Latest"}})
			if err != nil {
				return awsx.Classify(err, fmt.Sprintf("read launch template %s in %s", aws.ToString(lt.LaunchTemplateName), region))
			}
			for _, v := range versions.LaunchTemplateVersions {
				if d := v.LaunchTemplateData; d != nil && aws.ToString(d.ImageId) != "" && used[aws.ToString(d.ImageId)] == "" {
					used[aws.ToString(d.ImageId)] = fmt.Sprintf("launch template %s version %d",
						aws.ToString(lt.LaunchTemplateName), aws.ToInt64(v.VersionNumber))
				}
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return nil
		}
		in.NextToken = page.NextToken
	}
}

// Retire takes a decision's step. Each is idempotent: deprecating again
// moves nothing, a disabled image is not disabled again, and an image or
// snapshot already gone counts as deleted, so a retry after a crash
// between the deregistration and the snapshots finishes the job.
func Retire(ctx context.Context, c EC2API, d Decision, now time.Time) error {
	im := d.Image
	what := fmt.Sprintf("%s %s in %s/%s", d.Action, im.ID, im.Account, im.Region)
	switch d.Action {
	case ActionDeprecate:
		// EC2 takes no time in the past; the next minute is as good as now.
		at := now.Truncate(time.Minute).Add(time.Minute)
		_, err := c.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{ImageId: &im.ID, DeprecateAt: &at})
		return awsx.Classify(err, what)
	case ActionDisable:
		_, err := c.DisableImage(ctx, &ec2.DisableImageInput{ImageId: &im.ID})
		return awsx.Classify(err, what)
	case ActionDelete:
		if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: &im.ID}); err != nil && !gone(err) {
			return awsx.Classify(err, what)
		}
		for _, snap := range im.Snapshots {
			if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil && !gone(err) {
				return awsx.Classify(err, fmt.Sprintf("%s: snapshot %s", what, snap))
			}
		}
		return nil
	}
	return nil
}

// gone says an image or snapshot is not there (any more).
func gone(err error) bool {
	return hasErrorCode(err, "InvalidAMIID.NotFound") || hasErrorCode(err, "InvalidAMIID.Unavailable") ||
		hasErrorCode(err, "InvalidSnapshot.NotFound")
}

// ParametersInUse adds to used the AMIs the named SSM parameters hold:
// those kiln sets for a pipeline's targets. A parameter that does not
// exist (yet) holds none.
func ParametersInUse(ctx context.Context, c SSMAPI, region string, names []string, used map[string]string) error {
	for _, name := range names {
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if hasErrorCode(err, "ParameterNotFound") {
			continue
		}
		if err != nil {
			return awsx.Classify(err, fmt.Sprintf("read SSM parameter %s in %s", name, region))
		}
		if v := aws.ToString(out.Parameter.Value); v != "" && used[v] == "" {
			used[v] = "SSM parameter " + name
		}
	}
	return nil
}
