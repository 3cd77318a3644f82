package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// TestInput is what the test stage needs; it is recorded in history.
type TestInput struct {
	RunID    string      `json:"run_id"`
	Pipeline string      `json:"pipeline"`
	Event    event.Event `json:"event"`
	Plan     Plan        `json:"plan"`
	// AMIs maps region to AMI ID, from the bake's result; the AMI of the
	// test region is the one tested.
	AMIs map[string]string `json:"amis"`
}

// TestResult is the outcome of a test that ran to its end.
type TestResult struct {
	Region     string `json:"region"`
	AMI        string `json:"ami"`
	InstanceID string `json:"instance_id"`
	Passed     bool   `json:"passed"`
	LogPath    string `json:"log_path,omitempty"`
	// TerminateError says the instance could not be terminated; someone must
	// terminate it by hand (it carries the tag kiln:run).
	TerminateError string `json:"terminate_error,omitempty"`
}

// Test outcomes, the values of the kiln:test tag.
const (
	TestPassed = ami.TestPassed
	TestFailed = ami.TestFailed
)

// TestAMI launches an instance from the baked AMI, waits until it runs, and
// runs the configured commands in a fresh checkout of the commit with
// KILN_AMI_ID, KILN_INSTANCE_ID, KILN_INSTANCE_IP and KILN_REGION set. It tags
// the bake's AMIs in every region, and their snapshots, kiln:test=passed, or
// failed when a command fails (a permanent AMITestFailed error), and always
// terminates the instance, also when the run is cancelled. Infrastructure failures are retryable and tag
// nothing; a retry reuses the instance its checkpoint names if it still runs.
func (a *Activities) TestAMI(ctx context.Context, in TestInput) (_ *TestResult, err error) {
	info := activity.GetInfo(ctx)
	region := in.Plan.TestRegion()
	res := &TestResult{Region: region, AMI: in.AMIs[region]}
	if in.Plan.Test == nil || res.AMI == "" {
		return nil, permanent(ErrInvalidTestRequest, "the bake made no AMI in the test region %q (it made %v); set stages.test.region to one of them",
			region, slices.Sorted(maps.Keys(in.AMIs)))
	}
	runDir := safeName(in.RunID)
	paths := a.paths("test", runDir, info.Attempt)
	res.LogPath = paths.Log
	log := a.Log.With().Str("run", in.RunID).Str("pipeline", in.Pipeline).Str("repo", in.Plan.Repo).
		Str("commit", in.Plan.Commit).Str("ami", res.AMI).Str("region", region).Int32("attempt", info.Attempt).Logger()
	if info.Attempt > 1 {
		a.reapEarlierAttempts(in.RunID, runDir, info.Attempt)
	}
	logFile, err := createLog(res.LogPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	defer os.RemoveAll(paths.Work)
	out := &countingWriter{w: logFile}
	c, err := ami.EC2(ctx, a.clients(), region, ami.Principal{})
	if err != nil {
		return nil, err
	}

	var prev testCheckpoint
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prev)
	}
	hb := newHeartbeater(ctx, out, prev, func(cp *testCheckpoint, n int64) { cp.LogBytes = n })
	defer hb.stop()
	// Registered before anything can launch: every way out terminates, and
	// an error says when that failed, as its result is then discarded.
	defer func() { err = withLeakedInstance(err, res) }()
	defer a.terminateTestInstance(ctx, c, hb, out, log, res)
	if prev.Outcome != "" {
		// The commands ran to their end; the tag is what is missing.
		fmt.Fprintf(out, "[kiln] resuming: the test %s on %s; tagging %s\n", prev.Outcome, prev.InstanceID, res.AMI)
		res.InstanceID, res.Passed = prev.InstanceID, prev.Outcome == TestPassed
		return res, a.tagOutcome(ctx, in.AMIs, res, prev.FailureType, prev.Failure)
	}

	// Read before launching: a secret that is missing costs no instance.
	secrets, err := resolveSecrets(ctx, "stages.test.secrets", in.Plan.Test.Secrets, buildspec.Env{})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, in.Plan.TestTimeout())
	defer cancel()
	inst, err := a.startTestInstance(runCtx, c, in, region, res.AMI, hb, out)
	if err != nil {
		return nil, classifyTestError(ctx, runCtx, in, res, "waiting for the instance", amiError(err))
	}
	res.InstanceID = aws.ToString(inst.InstanceId)
	err = a.runTestCommands(runCtx, in, inst, region, paths.Work, secrets, hb, out)
	var cmdErr *buildspec.CommandError
	switch {
	case err == nil:
		res.Passed = true
		hb.set(func(cp *testCheckpoint) { cp.Step, cp.Outcome = "tagging", TestPassed })
		log.Info().Str("instance", res.InstanceID).Msg("AMI test passed")
		return res, a.tagOutcome(ctx, in.AMIs, res, "", "")
	case ctx.Err() == nil && (errors.As(err, &cmdErr) || errors.Is(runCtx.Err(), context.DeadlineExceeded)):
		var failure *temporal.ApplicationError
		errors.As(classifyTestError(ctx, runCtx, in, res, "running the test commands", err), &failure)
		hb.set(func(cp *testCheckpoint) {
			cp.Step, cp.Outcome, cp.FailureType, cp.Failure = "tagging", TestFailed, failure.Type(), failure.Message()
		})
		log.Warn().Err(err).Str("instance", res.InstanceID).Msg("AMI test failed")
		return res, a.tagOutcome(ctx, in.AMIs, res, failure.Type(), failure.Message())
	default:
		return nil, classifyTestError(ctx, runCtx, in, res, "running the test commands", err)
	}
}

// runTestCommands checks out the commit and runs the commands in one shell,
// like a buildspec's build phase, with the declared secrets.
func (a *Activities) runTestCommands(ctx context.Context, in TestInput, inst ec2types.Instance, region, work string, secrets []buildspec.Secret, hb *heartbeater[testCheckpoint], out *countingWriter) error {
	src := filepath.Join(work, "test")
	hb.set(func(cp *testCheckpoint) { cp.Step = "checkout" })
	fmt.Fprintf(out, "[kiln] checking out %s at %s\n", gitx.Redact(in.Plan.CloneURL), in.Plan.Commit)
	if err := checkout(ctx, in.Plan, src, out); err != nil {
		return err
	}
	ip := aws.ToString(inst.PublicIpAddress)
	if ip == "" {
		ip = aws.ToString(inst.PrivateIpAddress)
	}
	env := append(EventEnv(BuildInput{RunID: in.RunID, Pipeline: in.Pipeline, Event: in.Event, Plan: in.Plan}),
		"KILN_AMI_ID="+in.AMIs[region],
		"KILN_INSTANCE_ID="+aws.ToString(inst.InstanceId),
		"KILN_INSTANCE_IP="+ip,
		"KILN_REGION="+region,
	)
	// The commands become a buildspec's build phase in memory: no YAML is
	// written, so nothing in them is parsed twice.
	spec := &buildspec.Spec{Version: "0.2", Phases: buildspec.Phases{
		Build: &buildspec.Phase{Commands: in.Plan.Test.Commands},
	}}
	sh, err := a.hostSandbox(in.Pipeline, work, src)
	if err != nil {
		return err
	}
	defer sh.Release()
	hb.set(func(cp *testCheckpoint) { cp.Step = "commands" })
	_, err = spec.Run(ctx, buildspec.RunOptions{
		Dir:     src,
		Sandbox: sh.Sandbox,
		Env:     env,
		BaseEnv: append(sh.BaseEnv, mapEnv(in.Plan.Test.Env)...),
		Secrets: secrets,
		Log:     out,
		Progress: func(p buildspec.Progress) {
			hb.set(func(cp *testCheckpoint) { cp.Command = p.Command })
		},
	})
	return err
}

// tagOutcome tags every AMI of the bake, in every region, and their
// snapshots kiln:test=passed or failed: the AMIs of one bake are one image,
// and a later run reusing it looks for the tag. A failed test then returns a
// permanent error of failType (AMITestFailed or AMITestTimedOut) saying
// failure, so the run stops before distribution.
func (a *Activities) tagOutcome(ctx context.Context, amis map[string]string, res *TestResult, failType, failure string) error {
	outcome := TestPassed
	if !res.Passed {
		outcome = TestFailed
	}
	tags := []ec2types.Tag{{Key: aws.String(ami.TagTest), Value: aws.String(outcome)}}
	if err := ami.TagAll(ctx, a.clients(), amis, tags); err != nil {
		return err
	}
	if res.Passed {
		return nil
	}
	return permanent(failType, "%s", failure)
}

// classifyTestError words a failure for people and decides whether a retry
// can help: a failed or timed-out command cannot, a lost instance or an AWS
// hiccup can.
func classifyTestError(ctx, runCtx context.Context, in TestInput, res *TestResult, doing string, err error) error {
	var cmdErr *buildspec.CommandError
	var appErr *temporal.ApplicationError
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // cancelled or timed out by Temporal: it decides what next
	case errors.As(err, &appErr):
		// Already classified (awsx.Classify, a missing commit); wrapping would
		// hide its type from Temporal, which does not unwrap.
		return appErr
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		return permanent(ErrAMITestTimedOut, "test of %s in %s timed out %s after %s (stages.test.timeout); log: %s",
			res.AMI, res.Region, doing, in.Plan.TestTimeout(), res.LogPath)
	case errors.As(err, &cmdErr):
		return permanent(ErrAMITestFailed, "test of %s in %s on %s failed: %v\nlog: %s", res.AMI, res.Region, res.InstanceID, err, res.LogPath)
	default:
		return fmt.Errorf("test of %s in %s: %w (log: %s)", res.AMI, res.Region, err, res.LogPath)
	}
}
