package ami

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag keys and the passed value kiln puts on the AMIs it bakes and tests.
// They must match kiln's TagPipeline, TagCommit, TagRef, TagRun, TagTest and
// TestPassed (internal/ami/tags.go, until lately activities/ami.go and
// activities/amitest.go). The plugin copies them so as not to import kiln's
// module; kiln tags kiln:ref with the full ref (activities/bake.go).
const (
	TagPipeline = "kiln:pipeline"
	TagCommit   = "kiln:commit"
	TagRef      = "kiln:ref"
	TagRun      = "kiln:run"
	TagTest     = "kiln:test"
	// TagSource marks a copy kiln's distribution made, naming its source AMI.
	TagSource  = "kiln:source"
	TestPassed = "passed"
)

// EC2API is the one EC2 call the lookup makes.
type EC2API interface {
	DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error)
}

// Query says which AMI to find.
type Query struct {
	Pipeline string
	Ref      string
	Region   string
	// Commit, when set, narrows the search to AMIs baked from it.
	Commit string
	// Owners defaults to self.
	Owners []string
}

// Find returns the newest available AMI, by creation date, of q's pipeline
// and ref (and commit) that is tagged kiln:test=passed. An AMI that failed
// its test, or whose test has not finished, is never returned.
func Find(ctx context.Context, c EC2API, q Query) (*DatasourceOutput, error) {
	passed, err := describe(ctx, c, q, ec2types.Filter{Name: aws.String("tag:" + TagTest), Values: []string{TestPassed}})
	if err != nil {
		return nil, err
	}
	if len(passed) == 0 {
		return nil, notFound(ctx, c, q)
	}
	img := newest(withoutCopiesOfPresent(passed))
	tags := tagMap(img.Tags)
	return &DatasourceOutput{
		ID:           aws.ToString(img.ImageId),
		Commit:       tags[TagCommit],
		Run:          tags[TagRun],
		Ref:          tags[TagRef],
		Pipeline:     tags[TagPipeline],
		Region:       q.Region,
		CreationDate: aws.ToString(img.CreationDate),
		Tags:         tags,
	}, nil
}

// describe lists the available AMIs of q's owners, pipeline, ref and commit
// that also match extra.
func describe(ctx context.Context, c EC2API, q Query, extra ...ec2types.Filter) ([]ec2types.Image, error) {
	owners := q.Owners
	if len(owners) == 0 {
		owners = []string{"self"}
	}
	filters := []ec2types.Filter{
		{Name: aws.String("tag:" + TagPipeline), Values: []string{q.Pipeline}},
		{Name: aws.String("tag:" + TagRef), Values: RefValues(q.Ref)},
		{Name: aws.String("state"), Values: []string{"available"}},
	}
	if q.Commit != "" {
		filters = append(filters, ec2types.Filter{Name: aws.String("tag:" + TagCommit), Values: []string{q.Commit}})
	}
	in := &ec2.DescribeImagesInput{Owners: owners, Filters: append(filters, extra...)}
	var images []ec2types.Image
	for p := ec2.NewDescribeImagesPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("kiln-ami: look for AMIs of pipeline %q at ref %q in %s: %w", q.Pipeline, q.Ref, q.Region, err)
		}
		images = append(images, out.Images...)
	}
	return images, nil
}

// RefValues are the kiln:ref values that ref matches. kiln tags an AMI with
// the full ref it baked (refs/heads/main); people mostly write the branch
// (main), so each form matches the other.
func RefValues(ref string) []string {
	if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return []string{ref, branch}
	}
	if strings.HasPrefix(ref, "refs/") || ref == "HEAD" {
		return []string{ref}
	}
	return []string{ref, "refs/heads/" + ref}
}

// newest is the image created last; of two created in the same second, the
// one with the greater ID, so the choice does not depend on EC2's order.
func newest(images []ec2types.Image) ec2types.Image {
	return slices.MaxFunc(images, func(x, y ec2types.Image) int {
		if c := strings.Compare(aws.ToString(x.CreationDate), aws.ToString(y.CreationDate)); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(x.ImageId), aws.ToString(y.ImageId))
	})
}

// withoutCopiesOfPresent drops the copies (kiln:source) whose source AMI is
// among images: an encrypted copy kiln distributed to the bake's own account
// and region is newer than its source but no newer a bake. A copy whose
// source is elsewhere, as in an account kiln shares to, stays.
func withoutCopiesOfPresent(images []ec2types.Image) []ec2types.Image {
	present := make(map[string]bool, len(images))
	for _, im := range images {
		present[aws.ToString(im.ImageId)] = true
	}
	return slices.DeleteFunc(slices.Clone(images), func(im ec2types.Image) bool {
		return present[tagMap(im.Tags)[TagSource]]
	})
}

// notFound words the error for no passed AMI. It says what was looked for
// and, when AMIs of the pipeline and ref exist without kiln:test=passed,
// what the newest of them is tagged, since "it failed" and "its test has not
// finished" call for different fixes.
func notFound(ctx context.Context, c EC2API, q Query) error {
	what := fmt.Sprintf("pipeline %q at ref %q", q.Pipeline, q.Ref)
	if q.Commit != "" {
		what += fmt.Sprintf(" and commit %q", q.Commit)
	}
	msg := fmt.Sprintf("kiln-ami: no AMI of %s in %s has passed kiln's test (%s=%s)", what, q.Region, TagTest, TestPassed)
	if others, err := describe(ctx, c, q); err == nil && len(others) > 0 {
		img := newest(others)
		outcome := tagMap(img.Tags)[TagTest]
		if outcome == "" {
			outcome = "no " + TagTest + " tag: its test has not finished, or the pipeline has no test"
		} else {
			outcome = TagTest + "=" + outcome
		}
		msg += fmt.Sprintf("; %d untested or failed AMI(s) match, the newest %s (%s)", len(others), aws.ToString(img.ImageId), outcome)
	}
	return fmt.Errorf("%s", msg)
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}
