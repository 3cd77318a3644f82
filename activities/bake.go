package activities

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/packer"
)

// BakeInput is what the bake stage needs; it is recorded in history, so it
// holds no secret values (secret_vars are read on the worker).
type BakeInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// Force bakes even when an AMI of this pipeline and commit passed its test.
	Force bool `json:"force,omitempty"`
}

// BakeResult is the baked (or reused) AMI, one ID per region Packer built or
// copied it to.
type BakeResult struct {
	// AMIs maps region to AMI ID.
	AMIs map[string]string `json:"amis"`
	// Region is the bake region, where distribution copies from.
	Region string `json:"region"`
	// Reused is set when an AMI that passed its test was found instead of baking.
	Reused bool `json:"reused,omitempty"`
	// ReusedFrom is the run whose bake passed its test, when kiln tagged it.
	ReusedFrom string `json:"reused_from,omitempty"`
	LogPath    string `json:"log_path,omitempty"`
}

// AMI returns the AMI in the bake region.
func (r BakeResult) AMI() string { return r.AMIs[r.Region] }

// bakeCheckpoint is the bake's heartbeat. Once Packer has reported its AMIs
// they are in it, so a retry resumes at tagging rather than baking twice.
type bakeCheckpoint struct {
	Step     string            `json:"step"`
	LastLine string            `json:"last_line,omitempty"`
	AMIs     map[string]string `json:"amis,omitempty"`
	LogPath  string            `json:"log_path,omitempty"`
}

// Bake builds the AMI with Packer and tags it (and its snapshots) with the
// pipeline, commit, ref and run. Unless forced, it reuses an AMI of the same
// pipeline and commit that passed its test.
func (a *Activities) Bake(ctx context.Context, in BakeInput) (*BakeResult, error) {
	bake := in.Plan.Bake
	res := &BakeResult{Region: bake.Region}
	if !in.Force {
		amis, run, err := a.findPassedAMI(ctx, in)
		if err != nil {
			return nil, err
		}
		if amis != nil {
			res.AMIs, res.Reused, res.ReusedFrom = amis, true, run
			return res, nil
		}
	}
	var prev bakeCheckpoint
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	// Packer is silent for minutes at a time (waiting for the AMI, for SSH,
	// for a quiet provisioner, for its own cleanup when cancelled): the
	// heartbeat ticks on its own, not only on Packer's lines.
	hb := newHeartbeater(ctx, nil, prev, nil)
	defer hb.stop()
	cp := prev
	if len(cp.AMIs) > 0 {
		a.Log.Info().Str("run", in.RunID).Msg("bake resumes from its checkpoint: Packer already built the AMIs")
	} else {
		if info := activity.GetInfo(ctx); info.Attempt > 1 {
			// A Packer orphaned by a dead worker would go on building next to
			// this attempt.
			a.reapEarlierAttempts(in.RunID, safeName(in.RunID), info.Attempt)
		}
		amis, logPath, err := a.runPacker(ctx, in, hb)
		res.LogPath = logPath
		if err != nil {
			return res, err
		}
		cp = bakeCheckpoint{Step: "tagging", AMIs: amis, LogPath: logPath}
		hb.set(func(c *bakeCheckpoint) { *c = cp })
	}
	res.LogPath = cp.LogPath
	if err := a.tagAMIs(ctx, in, cp.AMIs); err != nil {
		return res, err
	}
	res.AMIs = cp.AMIs
	return res, nil
}

// runPacker checks out the commit and runs packer build in it.
func (a *Activities) runPacker(ctx context.Context, in BakeInput, hb *heartbeater[bakeCheckpoint]) (map[string]string, string, error) {
	info := activity.GetInfo(ctx)
	runDir := safeName(in.RunID)
	paths := a.paths("bake", runDir, info.Attempt)
	logPath := paths.Log
	logFile, err := createLog(logPath)
	if err != nil {
		return nil, logPath, err
	}
	defer logFile.Close()
	src := filepath.Join(paths.Work, "bake")
	defer os.RemoveAll(src)
	if err := checkout(ctx, in.Plan, src, logFile); err != nil {
		return nil, logPath, err
	}
	opts, err := a.packerOptions(in, src)
	if err != nil {
		return nil, logPath, err
	}
	opts.Log = logFile
	opts.Progress = func(p packer.Progress) {
		hb.set(func(c *bakeCheckpoint) { c.Step, c.LastLine = p.Step, p.LastLine })
	}
	runCtx, cancel := context.WithTimeout(ctx, in.Plan.BakeTimeout())
	defer cancel()
	out, err := packer.Build(runCtx, opts)
	if err != nil {
		return nil, logPath, a.classifyBakeError(ctx, runCtx, in, logPath, err)
	}
	amis, err := amisByRegion(out.Artifacts, in.Plan.Bake.Region, logPath)
	return amis, logPath, err
}

// amisByRegion maps region to the AMI Packer made there. The stages after
// the bake know one AMI per region, so a template that makes two in one
// region (two sources) is refused rather than one of them dropped.
func amisByRegion(arts []packer.Artifact, bakeRegion, logPath string) (map[string]string, error) {
	amis := map[string]string{}
	for _, art := range arts {
		if other, ok := amis[art.Region]; ok && other != art.AMI {
			return nil, permanent(ErrInvalidBakeRequest, "packer built two AMIs in %s, %s and %s, but kiln tests and distributes "+
				"one AMI per region; build one source per region in the template; log: %s", art.Region, other, art.AMI, logPath)
		}
		amis[art.Region] = art.AMI
	}
	if amis[bakeRegion] == "" {
		return nil, permanent(ErrBakeFailed, "packer built no AMI in the bake region %s (got %v); check the template's region; log: %s",
			bakeRegion, slices.Sorted(maps.Keys(amis)), logPath)
	}
	return amis, nil
}

// classifyBakeError decides whether a failed bake can succeed if run again.
// A failing template or provisioner cannot; a Packer that was killed (out of
// memory), could not start, or met AWS throttling, capacity or outage can.
func (a *Activities) classifyBakeError(ctx, runCtx context.Context, in BakeInput, logPath string, err error) error {
	var be *packer.BuildError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return permanent(ErrBakeTimedOut, "packer timed out after %s (stages.bake.timeout); log: %s", in.Plan.BakeTimeout(), logPath)
	case errors.As(err, &be) && be.Transient() != "":
		return retryable(ErrBakeInterrupted, "%v\n%s, so the bake is retried; log: %s", err, be.Transient(), logPath)
	case errors.As(err, &be):
		return permanent(ErrBakeFailed, "%v\nlog: %s", err, logPath)
	case errors.Is(err, packer.ErrStart):
		return retryable(ErrBakeInterrupted, "%v; the bake is retried; log: %s", err, logPath)
	default:
		return permanent(ErrInvalidBakeRequest, "%v; log: %s", err, logPath)
	}
}

// findPassedAMI returns the AMIs, by region, of the newest bake of this
// pipeline and commit that passed its test, and the run that baked them; nil
// when there is none (see ami.FindPassed).
func (a *Activities) findPassedAMI(ctx context.Context, in BakeInput) (map[string]string, string, error) {
	b := ami.Bake{Pipeline: in.Pipeline, Commit: in.Plan.Commit, Region: in.Plan.Bake.Region, TestRegion: in.Plan.TestRegion()}
	return ami.FindPassed(ctx, a.clients(), b, func(region, run string) {
		a.Log.Warn().Str("run", in.RunID).Str("tested_run", run).Str("region", region).
			Msg("the tested bake has no AMI left in this region: baking again")
	})
}

// tagAMIs tags every AMI and its snapshots with the run's identity, the
// regions of the bake's AMIs and, for a run an AMI trigger started, the
// base AMI it was given.
func (a *Activities) tagAMIs(ctx context.Context, in BakeInput, amis map[string]string) error {
	tags := append([]ec2types.Tag{
		{Key: aws.String(ami.TagPipeline), Value: aws.String(in.Pipeline)},
		{Key: aws.String(ami.TagCommit), Value: aws.String(in.Plan.Commit)},
		{Key: aws.String(ami.TagRef), Value: aws.String(in.Event.Ref)},
		{Key: aws.String(ami.TagRun), Value: aws.String(in.RunID)},
	}, ami.RegionTags(amis)...)
	if pass := in.Event.AMI; pass != nil {
		region := pass.BaseRegion(in.Plan.Bake.Region)
		tags = append(tags,
			ec2types.Tag{Key: aws.String(ami.TagParent), Value: aws.String(pass.AMIs[region])},
			ec2types.Tag{Key: aws.String(ami.TagParentRegion), Value: aws.String(region)},
			ec2types.Tag{Key: aws.String(ami.TagParentRun), Value: aws.String(pass.RunID)},
		)
	}
	return ami.TagAll(ctx, a.clients(), amis, tags)
}
