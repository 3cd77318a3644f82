package ami

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// CopyRequest is one copy of a source AMI into the region of the client
// that makes it.
type CopyRequest struct {
	// SourceRegion and SourceAMI name the AMI to copy; Name is its name,
	// which the copy keeps.
	SourceRegion, SourceAMI, Name string
	// RunID is the run the copy is made for, named in its description.
	RunID string
	// KMSKey encrypts the copy; empty makes a plain copy.
	KMSKey string
	// Token is CopyImage's ClientToken: the same copy always sends the same.
	Token string
}

// key is the kiln:copy-key value of the copy.
func (r CopyRequest) key() string {
	if r.KMSKey == "" {
		return "none"
	}
	return r.KMSKey
}

// marks are the tags a retry finds a copy by: its source and its key.
func (r CopyRequest) marks() []ec2types.Tag {
	return []ec2types.Tag{
		{Key: aws.String(TagSource), Value: aws.String(r.SourceAMI)},
		{Key: aws.String(TagCopyKey), Value: aws.String(r.key())},
	}
}

// CopyTags are the source AMI's tags for its copy, plus the copy's marks.
// AWS reserves the aws: prefix, so those tags cannot be copied.
func CopyTags(r CopyRequest, src []ec2types.Tag) []ec2types.Tag {
	out := r.marks()
	for _, t := range src {
		if k := aws.ToString(t.Key); !strings.HasPrefix(k, "aws:") && k != TagSource && k != TagCopyKey {
			out = append(out, t)
		}
	}
	return out
}

// CheckKey fails permanently (ErrKeyUnusable) when the KMS key is not
// enabled, and as awsx.Classify says when it does not exist: AWS would
// accept the copy and fail it minutes later. what says which copy it is for.
func CheckKey(ctx context.Context, c KMSAPI, region, key, what string) error {
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return awsx.Classify(err, fmt.Sprintf("%s: check KMS key %s", what, key))
	}
	if m := out.KeyMetadata; m != nil && m.KeyState != kmstypes.KeyStateEnabled {
		return fail(ErrKeyUnusable, "%s: the KMS key %s is %s; enable it or configure another key for %s",
			what, key, m.KeyState, region)
	}
	return nil
}

// FindCopy returns the copy r asks for, with the same encryption, that this
// account already has in the client's region, or "" when there is none.
// Failed copies do not count.
func FindCopy(ctx context.Context, c EC2API, r CopyRequest, what string) (string, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + TagSource), Values: []string{r.SourceAMI}},
			{Name: aws.String("tag:" + TagCopyKey), Values: []string{r.key()}},
			{Name: aws.String("state"), Values: []string{"pending", "available"}},
		},
	})
	if err != nil {
		return "", awsx.Classify(err, what+": look for an earlier copy")
	}
	if len(out.Images) == 0 {
		return "", nil
	}
	return aws.ToString(out.Images[0].ImageId), nil
}

// Copy starts the copy, tagged kiln:source at once so a retry finds it. The
// tag is sent in the request and set again right after, as not every EC2
// implementation applies TagSpecifications on CopyImage. On an error the new
// image's ID is still returned when there is one: the copy exists.
func Copy(ctx context.Context, c EC2API, r CopyRequest, what string) (string, error) {
	mark := r.marks()
	req := &ec2.CopyImageInput{
		Name:          aws.String(r.Name),
		Description:   aws.String(fmt.Sprintf("%s from %s by kiln run %s", r.SourceAMI, r.SourceRegion, r.RunID)),
		SourceImageId: aws.String(r.SourceAMI),
		SourceRegion:  aws.String(r.SourceRegion),
		ClientToken:   aws.String(r.Token),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: mark},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: mark},
		},
	}
	if r.KMSKey != "" {
		req.Encrypted, req.KmsKeyId = aws.Bool(true), aws.String(r.KMSKey)
	}
	out, err := c.CopyImage(ctx, req)
	if err != nil {
		return "", awsx.Classify(err, what)
	}
	id := aws.ToString(out.ImageId)
	if err := TagNewCopy(ctx, c, id, mark, fmt.Sprintf("%s: tag the new copy %s", what, id)); err != nil {
		return id, err
	}
	return id, nil
}

// newCopyTagDelays are the waits between tries to tag a copy CopyImage has
// just returned.
var newCopyTagDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// TagNewCopy tags a copy CopyImage has just returned. EC2 is eventually
// consistent: the new ID can be unknown to CreateTags for a moment, and
// InvalidAMIID.NotFound, permanent anywhere else, then only means "not yet".
// It is tried again after each of newCopyTagDelays; if the ID is still
// unknown, the error stays retryable, and the next attempt finds the copy by
// its tags (sent with CopyImage) or gets it back through the ClientToken.
func TagNewCopy(ctx context.Context, c EC2API, id string, tags []ec2types.Tag, what string) error {
	for try := 0; ; try++ {
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: tags})
		if !hasErrorCode(err, "InvalidAMIID.NotFound") {
			return awsx.Classify(err, what)
		}
		if try == len(newCopyTagDelays) {
			return fmt.Errorf("%s: EC2 does not know the new copy yet after %d tries: %w", what, try+1, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(newCopyTagDelays[try]):
		}
	}
}

// WaitAvailable reads the copy every so often until it is available, and
// returns it as last described (its snapshots are known only then). A copy
// AWS fails, or one that disappears, is permanent (ErrCopyFailed) and carries
// AWS's reason. It ends with ctx, which the caller keeps alive meanwhile.
func WaitAvailable(ctx context.Context, c EC2API, ami string, every time.Duration, what string) (ec2types.Image, error) {
	missing := 0
	for {
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
		var img ec2types.Image
		var reason string
		switch {
		case hasErrorCode(err, "InvalidAMIID.NotFound") || (err == nil && len(out.Images) == 0):
			// A new image can take a moment to be visible; one that stays
			// missing was deregistered. Retrying would wait on the same ID
			// (and the same ClientToken would return it), so the target fails
			// and waits for `kiln retry`, whose new generation copies afresh.
			if missing++; missing > 20 {
				return ec2types.Image{}, fail(ErrCopyFailed, "%s: the copy %s disappeared (deregistered?)", what, ami)
			}
		case err != nil:
			return ec2types.Image{}, awsx.Classify(err, fmt.Sprintf("%s: read the copy %s", what, ami))
		default:
			img = out.Images[0]
			if r := img.StateReason; r != nil {
				reason = aws.ToString(r.Message)
			}
		}
		switch img.State {
		case ec2types.ImageStateAvailable:
			return img, nil
		case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid, ec2types.ImageStateDeregistered:
			return img, fail(ErrCopyFailed, "%s: AWS failed the copy %s (%s): %s", what, ami, img.State, reason)
		}
		select {
		case <-ctx.Done():
			return ec2types.Image{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// DeregisterPending deregisters the image if it is still pending, which is
// how AWS stops a copy. pending says whether it was found pending; err is
// then DeregisterImage's failure, and otherwise DescribeImages' (nil when the
// image is simply not pending). Errors are AWS's own: a caller cleaning up
// only reports them.
func DeregisterPending(ctx context.Context, c EC2API, ami string) (pending bool, err error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil || len(out.Images) != 1 || out.Images[0].State != ec2types.ImageStatePending {
		return false, err
	}
	_, err = c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami)})
	return true, err
}
