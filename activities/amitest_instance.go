package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/config"
)

// InstanceClientToken is the RunInstances ClientToken of a run's test
// instance: the same for every attempt, so a retry after a crash between
// RunInstances and the checkpoint gets the same instance back from EC2
// instead of launching a second one. launch counts the instances the run
// launched deliberately (a retry whose instance had died launches the next).
func InstanceClientToken(runID, region, amiID string, launch int) string {
	h := sha256.Sum256([]byte(runID + "\x00" + region + "\x00" + amiID + "\x00" + strconv.Itoa(launch)))
	return "kiln-test-" + hex.EncodeToString(h[:20])
}

// startTestInstance launches the test instance, or takes over the one an
// earlier attempt launched if it still runs, and waits until it is running.
// The instance ID is heartbeated as soon as EC2 returns it.
func (a *Activities) startTestInstance(ctx context.Context, c ami.EC2API, in TestInput, region, amiID string, hb *heartbeater[testCheckpoint], out *countingWriter) (ec2types.Instance, error) {
	id, err := launchTestInstance(ctx, c, in, region, amiID, hb, out)
	if err != nil {
		return ec2types.Instance{}, err
	}
	hb.set(func(cp *testCheckpoint) { cp.Step = "waiting" })
	return ami.WaitRunning(ctx, c, region, id)
}

// launchTestInstance returns the instance the checkpoint names if it is
// still alive, and otherwise launches the next one.
func launchTestInstance(ctx context.Context, c ami.EC2API, in TestInput, region, amiID string, hb *heartbeater[testCheckpoint], out *countingWriter) (string, error) {
	if id := hb.get().InstanceID; id != "" {
		inst, err := ami.DescribeInstance(ctx, c, region, id)
		if err != nil {
			return "", err
		}
		if inst != nil && ami.Alive(*inst) {
			fmt.Fprintf(out, "[kiln] taking over %s, launched by an earlier attempt\n", id)
			return id, nil
		}
		hb.set(func(cp *testCheckpoint) { cp.Launch, cp.InstanceID = cp.Launch+1, "" })
	}
	hb.set(func(cp *testCheckpoint) {
		cp.Step = "launching"
		cp.Launch = max(cp.Launch, 1)
	})
	test := in.Plan.Test
	t := ami.TestInstance{Region: region, AMI: amiID, InstanceType: test.InstanceType,
		SubnetID: test.SubnetID, SecurityGroupIDs: test.SecurityGroupIDs,
		Token:    InstanceClientToken(in.RunID, region, amiID, hb.get().Launch),
		Pipeline: in.Pipeline, Commit: in.Plan.Commit, RunID: in.RunID}
	if t.InstanceType == "" {
		t.InstanceType = config.DefaultTestInstanceType
	}
	fmt.Fprintf(out, "[kiln] launching a %s from %s in %s\n", t.InstanceType, amiID, region)
	id, err := ami.Launch(ctx, c, t)
	if err != nil {
		return "", err
	}
	hb.set(func(cp *testCheckpoint) { cp.Step, cp.InstanceID = "waiting", id })
	fmt.Fprintf(out, "[kiln] launched %s; waiting until it runs\n", id)
	return id, nil
}

// terminateTestInstance terminates the instance the checkpoint names, also
// when the run was cancelled or timed out. A failure is logged and recorded
// in res: the instance, tagged kiln:run, must then be terminated by hand.
func (a *Activities) terminateTestInstance(ctx context.Context, c ami.EC2API, hb *heartbeater[testCheckpoint], out *countingWriter, log zerolog.Logger, res *TestResult) {
	id := hb.get().InstanceID
	if id == "" {
		return
	}
	res.InstanceID = id
	if err := ami.Terminate(ctx, c, res.Region, id); err != nil {
		res.TerminateError = err.Error()
		log.Error().Err(err).Str("instance", id).Msg("could not terminate the test instance: terminate it by hand")
		fmt.Fprintf(out, "[kiln] could not terminate %s; terminate it by hand: %v\n", id, err)
		return
	}
	fmt.Fprintf(out, "[kiln] terminated %s\n", id)
}

// withLeakedInstance adds to the error a failed test returns that its
// instance could not be terminated: the result, where TerminateError says so,
// is discarded when there is an error, and the operator must learn which
// instance to terminate by hand. The error keeps its type and retryability; a
// cancellation stays one, with the message as its details.
func withLeakedInstance(err error, res *TestResult) error {
	if err == nil || res.TerminateError == "" {
		return err
	}
	leak := fmt.Sprintf("the test instance %s in %s was left running: %s; terminate it by hand (it is tagged %s)",
		res.InstanceID, res.Region, res.TerminateError, ami.TagRun)
	if errors.Is(err, context.Canceled) {
		return temporal.NewCanceledError("cancelled; " + leak)
	}
	if appErr, ok := err.(*temporal.ApplicationError); ok {
		return temporal.NewApplicationErrorWithOptions(appErr.Message()+"\n"+leak, appErr.Type(),
			temporal.ApplicationErrorOptions{NonRetryable: appErr.NonRetryable(), Cause: appErr.Unwrap()})
	}
	return fmt.Errorf("%w\n%s", err, leak)
}

// testCheckpoint is the test's heartbeat: where it is, which instance it
// launched (so a retry takes it over or terminates nothing twice) and, once
// the commands ended, their outcome (so a retry only tags).
type testCheckpoint struct {
	Step       string `json:"step"`
	Launch     int    `json:"launch,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	Command    int    `json:"command,omitempty"`
	// Outcome is TestPassed or TestFailed once the commands ended; a failure
	// keeps its error type and message.
	Outcome     string `json:"outcome,omitempty"`
	FailureType string `json:"failure_type,omitempty"`
	Failure     string `json:"failure,omitempty"`
	LogBytes    int64  `json:"log_bytes"`
}
