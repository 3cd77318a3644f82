package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/ami"
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

	res, err := a.copyAMI(ctx, in, hb)
	if err != nil {
		return nil, amiError(err)
	}
	a.Log.Info().Str("run", in.RunID).Str("source", in.Source.AMI).Str("account", res.Account).
		Str("region", in.Region).Str("ami", res.AMI).Bool("resumed", res.Resumed).Msg("AMI copied")
	return res, nil
}

// copyAMI takes CopyAMI's steps, from where the checkpoint says.
func (a *Activities) copyAMI(ctx context.Context, in CopyInput, hb *heartbeater[copyCheckpoint]) (*CopyResult, error) {
	src, err := a.describeSource(ctx, in.Source)
	if err != nil {
		return nil, err
	}
	res := &CopyResult{Account: in.Account, Region: in.Region}
	if res.Account == "" {
		res.Account = src.Owner
	}
	what := fmt.Sprintf("copy %s from %s to %s in account %s", in.Source.AMI, in.Source.Region, in.Region, res.Account)
	dst, err := a.copyTarget(ctx, in, src, res.Account, what)
	if err != nil {
		return nil, err
	}
	req := ami.CopyRequest{SourceRegion: in.Source.Region, SourceAMI: in.Source.AMI, Name: src.Name,
		RunID: in.RunID, KMSKey: in.KMSKey, Token: CopyToken(in)}
	prev := hb.get()
	res.AMI, res.Resumed = prev.AMI, prev.AMI != ""
	created := prev.Created
	if res.AMI == "" {
		if res.AMI, err = ami.FindCopy(ctx, dst, req, what); err != nil {
			return nil, err
		}
		res.Resumed = res.AMI != ""
	}
	if res.AMI == "" {
		res.AMI, err = ami.Copy(ctx, dst, req, what)
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
	img, err := ami.WaitAvailable(ctx, dst, res.AMI, a.copyPollInterval(), what)
	if err != nil {
		if created {
			a.stopCancelledCopy(ctx, dst, in, res.AMI)
		}
		return nil, err
	}
	hb.set(func(cp *copyCheckpoint) { cp.Step = "tagging" })
	if err := ami.TagImage(ctx, dst, in.Region, img, ami.CopyTags(req, src.Tags)); err != nil {
		return nil, err
	}
	return res, nil
}

// copyTarget readies the copy's account: another account is granted the
// source AMI and copies as the target's role, after its KMS key is checked.
// It returns the EC2 client the copy is made with.
func (a *Activities) copyTarget(ctx context.Context, in CopyInput, src *ami.Source, account, what string) (ami.EC2API, error) {
	if account != src.Owner && in.Role == "" {
		return nil, permanent(ErrInvalidDistribution, "%s: a copy owned by account %s must be made as a role in that account, "+
			"but the target names no role and the worker's credentials act in account %s; set the target's role", what, account, src.Owner)
	}
	if account != src.Owner {
		if err := a.grant(ctx, in.Source.Region, src, account); err != nil {
			return nil, err
		}
	}
	as := ami.Principal{Role: in.Role, Session: in.RunID}
	dst, err := ami.EC2(ctx, a.clients(), in.Region, as)
	if err != nil {
		return nil, err
	}
	if in.KMSKey != "" {
		keys, err := ami.KMS(ctx, a.clients(), in.Region, as)
		if err != nil {
			return nil, err
		}
		if err := ami.CheckKey(ctx, keys, in.Region, in.KMSKey, what); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// copyPollInterval is how often a copy's state is read.
func (a *Activities) copyPollInterval() time.Duration {
	if a.CopyPollInterval <= 0 {
		return DefaultCopyPollInterval
	}
	return a.CopyPollInterval
}

// stopCancelledCopy deregisters a copy this run made that is still pending
// when the run is cancelled: deregistering is how AWS stops a copy, which
// would otherwise go on, and be paid for, for a run nobody wants. A copy
// another run made (found by its tags), or one that is already available,
// is left alone: another run may be using it. Only a cancel does this; a
// worker shutting down or a timed-out attempt leaves the copy for the retry
// to wait for.
func (a *Activities) stopCancelledCopy(ctx context.Context, c ami.EC2API, in CopyInput, id string) {
	var cancelled *temporal.CanceledError
	if id == "" || !errors.As(context.Cause(ctx), &cancelled) {
		return
	}
	// The activity's context is done; the calls get their own minute.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	log := a.Log.With().Str("run", in.RunID).Str("region", in.Region).Str("ami", id).Logger()
	pending, err := ami.DeregisterPending(dctx, c, id)
	switch {
	case !pending:
		log.Info().Err(err).Msg("run cancelled: the copy is not pending (or unknown); left as it is")
	case err != nil:
		log.Warn().Err(err).Msg("run cancelled: could not stop the pending copy; deregister it by hand")
	default:
		log.Info().Msg("run cancelled: pending copy stopped (deregistered)")
	}
}

// describeSource reads the source AMI with the worker's credentials, once per
// worker for all the targets of a run. A missing AMI is permanent: nothing
// can be distributed.
func (a *Activities) describeSource(ctx context.Context, s SourceAMI) (*ami.Source, error) {
	v, err := a.sources.Do(ctx, s.Region+"/"+s.AMI, func(ctx context.Context) (any, error) {
		c, err := ami.EC2(ctx, a.clients(), s.Region, ami.Principal{})
		if err != nil {
			return nil, err
		}
		return ami.ReadSource(ctx, c, s.Region, s.AMI)
	})
	if err != nil {
		return nil, err
	}
	return v.(*ami.Source), nil
}

// CopyToken is the ClientToken of a copy: the same run, target and
// generation always send the same token (at most 64 ASCII characters).
func CopyToken(in CopyInput) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{in.RunID, in.Account, in.Region, in.Source.AMI,
		fmt.Sprint(in.Generation)}, "\x00")))
	return "kiln-" + hex.EncodeToString(sum[:])[:40]
}
