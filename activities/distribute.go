package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Errors of the distribute stage; both are permanent.
const (
	// ErrCopyFailed: AWS gave up on a copy (the image went to the failed
	// state), most often because of the KMS key. The message carries AWS's
	// reason.
	ErrCopyFailed = "AMICopyFailed"
	// ErrInvalidDistribution: the request cannot be carried out as asked,
	// e.g. the source AMI is not available.
	ErrInvalidDistribution = "InvalidDistribution"
)

// DefaultCopyPollInterval is how often a copy's state is read by default. AMI
// copies take minutes, and DescribeImages is rate-limited per account.
const DefaultCopyPollInterval = 15 * time.Second

// SourceAMI is the tested AMI a distribution starts from.
type SourceAMI struct {
	Region string `json:"region"`
	AMI    string `json:"ami"`
}

// CopyInput asks for the source AMI to be copied into one account and region.
type CopyInput struct {
	RunID    string    `json:"run_id"`
	Pipeline string    `json:"pipeline"`
	Source   SourceAMI `json:"source"`
	// Account owns the copy; empty means the source AMI's own account (a
	// regional copy that share-mode targets are then given).
	Account string `json:"account,omitempty"`
	// Role is assumed to make the copy; empty means the worker's credentials.
	Role   string `json:"role,omitempty"`
	Region string `json:"region"`
	// KMSKey encrypts the copy; empty makes a plain copy.
	KMSKey string `json:"kms_key,omitempty"`
	// Generation counts operator retries of this target. It is part of the
	// ClientToken, so a retry after a copy AWS failed makes a new copy.
	Generation int `json:"generation,omitempty"`
}

// CopyResult is a finished copy.
type CopyResult struct {
	Account string `json:"account"`
	Region  string `json:"region"`
	AMI     string `json:"ami"`
	// Resumed says the copy existed already (from a crashed attempt or an
	// earlier run) and was only waited for.
	Resumed bool `json:"resumed,omitempty"`
}

// copyCheckpoint is a copy's heartbeat: the new image as soon as CopyImage
// returns, so a retry after a crash waits for it instead of copying again.
type copyCheckpoint struct {
	AMI  string `json:"ami,omitempty"`
	Step string `json:"step"`
	// Created says this run's CopyImage made AMI, rather than finding a copy
	// another run made: only such a copy is stopped when the run is
	// cancelled.
	Created bool `json:"created,omitempty"`
}

// CopyAMI copies the source AMI into one account and region and waits until
// the copy is available. For another account it first gives that account
// launch permission on the source AMI and create-volume permission on its
// snapshots, then copies as the target's role, encrypted with the region's
// KMS key. Every tag of the source AMI is copied to the new AMI and its
// snapshots. It is idempotent three ways: the heartbeat checkpoint, a lookup
// of a copy tagged kiln:source, and a ClientToken derived from the run and
// the target.
func (a *Activities) CopyAMI(ctx context.Context, in CopyInput) (*CopyResult, error) {
	// Heartbeat from the start: reading the source, granting and assuming
	// the role can outlast the heartbeat timeout under throttling.
	var prev copyCheckpoint
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	hb := newHeartbeater[copyCheckpoint](ctx, nil, prev, nil)
	defer hb.stop()

	src, err := a.describeSource(ctx, in.Source)
	if err != nil {
		return nil, err
	}
	res := &CopyResult{Account: in.Account, Region: in.Region}
	if res.Account == "" {
		res.Account = src.owner
	}
	what := fmt.Sprintf("copy %s from %s to %s in account %s", in.Source.AMI, in.Source.Region, in.Region, res.Account)
	if res.Account != src.owner && in.Role == "" {
		return nil, permanent(ErrInvalidDistribution, "%s: a copy owned by account %s must be made as a role in that account, "+
			"but the target names no role and the worker's credentials act in account %s; set the target's role", what, res.Account, src.owner)
	}
	if res.Account != src.owner {
		if err := a.grant(ctx, in.Source.Region, src, res.Account); err != nil {
			return nil, err
		}
	}
	as := Principal{Role: in.Role, Session: in.RunID}
	dst, err := a.ec2As(ctx, in.Region, as)
	if err != nil {
		return nil, err
	}
	if in.KMSKey != "" {
		if err := a.checkKey(ctx, in.Region, as, in.KMSKey, what); err != nil {
			return nil, err
		}
	}
	res.AMI, res.Resumed = prev.AMI, prev.AMI != ""
	created := prev.Created
	if res.AMI == "" {
		if res.AMI, err = findCopy(ctx, dst, in, what); err != nil {
			return nil, err
		}
		res.Resumed = res.AMI != ""
	}
	if res.AMI == "" {
		res.AMI, err = copyImage(ctx, dst, in, src, what)
		created = res.AMI != ""
		if err != nil {
			if created {
				hb.set(func(cp *copyCheckpoint) { cp.AMI, cp.Created = res.AMI, true })
				a.stopCancelledCopy(ctx, dst, in, res.AMI)
			}
			return nil, err
		}
	}
	hb.set(func(cp *copyCheckpoint) { cp.AMI, cp.Created, cp.Step = res.AMI, created, "waiting for "+res.AMI })
	img, err := a.waitAvailable(ctx, dst, res.AMI, what)
	if err != nil {
		if created {
			a.stopCancelledCopy(ctx, dst, in, res.AMI)
		}
		return nil, err
	}
	hb.set(func(cp *copyCheckpoint) { cp.Step = "tagging" })
	if err := tagImageAndSnapshots(ctx, dst, in.Region, img, copyTags(src.tags, in)); err != nil {
		return nil, err
	}
	a.Log.Info().Str("run", in.RunID).Str("source", in.Source.AMI).Str("account", res.Account).
		Str("region", in.Region).Str("ami", res.AMI).Bool("resumed", res.Resumed).Msg("AMI copied")
	return res, nil
}

// stopCancelledCopy deregisters a copy this run made that is still pending
// when the run is cancelled: deregistering is how AWS stops a copy, which
// would otherwise go on, and be paid for, for a run nobody wants. A copy
// another run made (found by its tags), or one that is already available,
// is left alone: another run may be using it. Only a cancel does this; a
// worker shutting down or a timed-out attempt leaves the copy for the retry
// to wait for.
func (a *Activities) stopCancelledCopy(ctx context.Context, c EC2API, in CopyInput, ami string) {
	var cancelled *temporal.CanceledError
	if ami == "" || !errors.As(context.Cause(ctx), &cancelled) {
		return
	}
	// The activity's context is done; the calls get their own minute.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	log := a.Log.With().Str("run", in.RunID).Str("region", in.Region).Str("ami", ami).Logger()
	out, err := c.DescribeImages(dctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil || len(out.Images) != 1 || out.Images[0].State != ec2types.ImageStatePending {
		log.Info().Err(err).Msg("run cancelled: the copy is not pending (or unknown); left as it is")
		return
	}
	if _, err := c.DeregisterImage(dctx, &ec2.DeregisterImageInput{ImageId: aws.String(ami)}); err != nil {
		log.Warn().Err(err).Msg("run cancelled: could not stop the pending copy; deregister it by hand")
		return
	}
	log.Info().Msg("run cancelled: pending copy stopped (deregistered)")
}

// sourceImage is what a distribution needs to know of the source AMI.
type sourceImage struct {
	id        string
	owner     string
	name      string
	snapshots []string
	tags      []ec2types.Tag
}

// describeSource reads the source AMI with the worker's credentials, once per
// worker for all the targets of a run. A missing AMI is permanent: nothing
// can be distributed.
func (a *Activities) describeSource(ctx context.Context, s SourceAMI) (*sourceImage, error) {
	v, err := a.sources.do(ctx, s.Region+"/"+s.AMI, func(ctx context.Context) (any, error) { return a.readSource(ctx, s) })
	if err != nil {
		return nil, err
	}
	return v.(*sourceImage), nil
}

func (a *Activities) readSource(ctx context.Context, s SourceAMI) (*sourceImage, error) {
	c, err := a.ec2(ctx, s.Region)
	if err != nil {
		return nil, err
	}
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{s.AMI}})
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("read the source AMI %s in %s", s.AMI, s.Region))
	}
	if len(out.Images) == 0 {
		return nil, permanent(awsx.TypeNotFound, "the source AMI %s is not in %s", s.AMI, s.Region)
	}
	im := out.Images[0]
	if im.State != ec2types.ImageStateAvailable {
		return nil, permanent(ErrInvalidDistribution, "the source AMI %s in %s is %s, not available", s.AMI, s.Region, im.State)
	}
	return &sourceImage{id: s.AMI, owner: aws.ToString(im.OwnerId), name: aws.ToString(im.Name),
		snapshots: snapshotIDs(im), tags: im.Tags}, nil
}

// checkKey fails permanently when the KMS key does not exist or is not
// enabled: AWS would accept the copy and fail it minutes later.
func (a *Activities) checkKey(ctx context.Context, region string, as Principal, key, what string) error {
	c, err := a.clients().KMS(ctx, region, as)
	if err != nil {
		return fmt.Errorf("KMS client for %s: %w", region, err)
	}
	out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return awsx.Classify(err, fmt.Sprintf("%s: check KMS key %s", what, key))
	}
	if m := out.KeyMetadata; m != nil && m.KeyState != kmstypes.KeyStateEnabled {
		return permanent(awsx.TypeKMSKeyUnusable, "%s: the KMS key %s is %s; enable it or configure another key for %s",
			what, key, m.KeyState, region)
	}
	return nil
}

// findCopy returns the copy of the source, with the same encryption, that
// this account already has in the client's region, or "" when there is none.
// Failed copies do not count.
func findCopy(ctx context.Context, c EC2API, in CopyInput, what string) (string, error) {
	out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners: []string{"self"},
		Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + TagSource), Values: []string{in.Source.AMI}},
			{Name: aws.String("tag:" + TagCopyKey), Values: []string{copyKey(in)}},
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

// copyImage starts the copy, tagged kiln:source at once so a retry finds it.
// The tag is sent in the request and set again right after, as not every EC2
// implementation applies TagSpecifications on CopyImage.
func copyImage(ctx context.Context, c EC2API, in CopyInput, src *sourceImage, what string) (string, error) {
	mark := copyMarks(in)
	req := &ec2.CopyImageInput{
		Name:          aws.String(src.name),
		Description:   aws.String(fmt.Sprintf("%s from %s by kiln run %s", in.Source.AMI, in.Source.Region, in.RunID)),
		SourceImageId: aws.String(in.Source.AMI),
		SourceRegion:  aws.String(in.Source.Region),
		ClientToken:   aws.String(CopyToken(in)),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeImage, Tags: mark},
			{ResourceType: ec2types.ResourceTypeSnapshot, Tags: mark},
		},
	}
	if in.KMSKey != "" {
		req.Encrypted, req.KmsKeyId = aws.Bool(true), aws.String(in.KMSKey)
	}
	out, err := c.CopyImage(ctx, req)
	if err != nil {
		return "", awsx.Classify(err, what)
	}
	id := aws.ToString(out.ImageId)
	// On an error the new ID is still returned: the copy exists.
	if err := tagNewCopy(ctx, c, id, mark, fmt.Sprintf("%s: tag the new copy %s", what, id)); err != nil {
		return id, err
	}
	return id, nil
}

// newCopyTagDelays are the waits between tries to tag a copy CopyImage has
// just returned.
var newCopyTagDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// tagNewCopy tags a copy CopyImage has just returned. EC2 is eventually
// consistent: the new ID can be unknown to CreateTags for a moment, and
// InvalidAMIID.NotFound, permanent anywhere else, then only means "not yet".
// It is tried again after each of newCopyTagDelays; if the ID is still
// unknown, the error stays retryable, and the next attempt finds the copy by
// its tags (sent with CopyImage) or gets it back through the ClientToken.
func tagNewCopy(ctx context.Context, c EC2API, id string, tags []ec2types.Tag, what string) error {
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

// CopyToken is the ClientToken of a copy: the same run, target and
// generation always send the same token (at most 64 ASCII characters).
func CopyToken(in CopyInput) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{in.RunID, in.Account, in.Region, in.Source.AMI,
		fmt.Sprint(in.Generation)}, "\x00")))
	return "kiln-" + hex.EncodeToString(sum[:])[:40]
}

// waitAvailable polls the copy until it is available, and returns it as last
// described (its snapshots are known only then). A copy AWS fails is a
// permanent error carrying AWS's reason. The caller's heartbeater keeps the
// activity alive meanwhile and brings cancellation.
func (a *Activities) waitAvailable(ctx context.Context, c EC2API, ami, what string) (ec2types.Image, error) {
	every := a.CopyPollInterval
	if every <= 0 {
		every = DefaultCopyPollInterval
	}
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
				return ec2types.Image{}, permanent(ErrCopyFailed, "%s: the copy %s disappeared (deregistered?)", what, ami)
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
			return img, permanent(ErrCopyFailed, "%s: AWS failed the copy %s (%s): %s", what, ami, img.State, reason)
		}
		select {
		case <-ctx.Done():
			return ec2types.Image{}, ctx.Err()
		case <-time.After(every):
		}
	}
}

// copyMarks are the tags a retry finds a copy by: its source and its key.
func copyMarks(in CopyInput) []ec2types.Tag {
	return []ec2types.Tag{
		{Key: aws.String(TagSource), Value: aws.String(in.Source.AMI)},
		{Key: aws.String(TagCopyKey), Value: aws.String(copyKey(in))},
	}
}

func copyKey(in CopyInput) string {
	if in.KMSKey == "" {
		return "none"
	}
	return in.KMSKey
}

// copyTags are the source AMI's tags for its copies, plus the copy's marks.
// AWS reserves the aws: prefix, so those tags cannot be copied.
func copyTags(src []ec2types.Tag, in CopyInput) []ec2types.Tag {
	out := copyMarks(in)
	for _, t := range src {
		if k := aws.ToString(t.Key); !strings.HasPrefix(k, "aws:") && k != TagSource && k != TagCopyKey {
			out = append(out, t)
		}
	}
	return out
}

func snapshotIDs(im ec2types.Image) []string {
	var ids []string
	for _, bdm := range im.BlockDeviceMappings {
		if bdm.Ebs != nil && bdm.Ebs.SnapshotId != nil {
			ids = append(ids, *bdm.Ebs.SnapshotId)
		}
	}
	return ids
}
