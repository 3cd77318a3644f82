package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
)

// terminateTimeout bounds terminating the test instance, which runs on a
// context of its own so that a cancelled or timed-out run still does it.
const terminateTimeout = 2 * time.Minute

// InstanceClientToken is the RunInstances ClientToken of a run's test
// instance: the same for every attempt, so a retry after a crash between
// RunInstances and the checkpoint gets the same instance back from EC2
// instead of launching a second one. launch counts the instances the run
// launched deliberately (a retry whose instance had died launches the next).
func InstanceClientToken(runID, region, ami string, launch int) string {
	h := sha256.Sum256([]byte(runID + "\x00" + region + "\x00" + ami + "\x00" + strconv.Itoa(launch)))
	return "kiln-test-" + hex.EncodeToString(h[:20])
}

// startTestInstance launches the test instance, or takes over the one an
// earlier attempt launched if it still runs, and waits until it is running.
// The instance ID is heartbeated as soon as EC2 returns it.
func (a *Activities) startTestInstance(ctx context.Context, c EC2API, in TestInput, region, ami string, hb *heartbeater[testCheckpoint], out *countingWriter) (ec2types.Instance, error) {
	cp := hb.get()
	if cp.InstanceID != "" {
		inst, err := describeInstance(ctx, c, region, cp.InstanceID)
		if err != nil {
			return ec2types.Instance{}, err
		}
		if inst != nil && alive(*inst) {
			fmt.Fprintf(out, "[kiln] taking over %s, launched by an earlier attempt\n", cp.InstanceID)
			return waitRunning(ctx, c, region, cp.InstanceID, hb)
		}
		hb.set(func(cp *testCheckpoint) { cp.Launch, cp.InstanceID = cp.Launch+1, "" })
	}
	hb.set(func(cp *testCheckpoint) {
		cp.Step = "launching"
		cp.Launch = max(cp.Launch, 1)
	})
	launch := hb.get().Launch
	test := in.Plan.Test
	itype := test.InstanceType
	if itype == "" {
		itype = config.DefaultTestInstanceType
	}
	req := &ec2.RunInstancesInput{
		ImageId:                           aws.String(ami),
		InstanceType:                      ec2types.InstanceType(itype),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		ClientToken:                       aws.String(InstanceClientToken(in.RunID, region, ami, launch)),
		SecurityGroupIds:                  test.SecurityGroupIDs,
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{
				{Key: aws.String("Name"), Value: aws.String("kiln-test " + in.Pipeline)},
				{Key: aws.String(TagRun), Value: aws.String(in.RunID)},
				{Key: aws.String(TagPipeline), Value: aws.String(in.Pipeline)},
				{Key: aws.String(TagCommit), Value: aws.String(in.Plan.Commit)},
			},
		}},
	}
	if test.SubnetID != "" {
		req.SubnetId = aws.String(test.SubnetID)
	}
	fmt.Fprintf(out, "[kiln] launching a %s from %s in %s\n", itype, ami, region)
	run, err := c.RunInstances(ctx, req)
	if err != nil {
		return ec2types.Instance{}, awsx.Classify(err, fmt.Sprintf("launch a %s from %s in %s", itype, ami, region))
	}
	if len(run.Instances) == 0 {
		return ec2types.Instance{}, fmt.Errorf("launch from %s in %s: EC2 returned no instance", ami, region)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	hb.set(func(cp *testCheckpoint) { cp.Step, cp.InstanceID = "waiting", id })
	fmt.Fprintf(out, "[kiln] launched %s; waiting until it runs\n", id)
	return waitRunning(ctx, c, region, id, hb)
}

// waitRunning polls until the instance runs; the heartbeat goes on meanwhile.
func waitRunning(ctx context.Context, c EC2API, region, id string, hb *heartbeater[testCheckpoint]) (ec2types.Instance, error) {
	hb.set(func(cp *testCheckpoint) { cp.Step = "waiting" })
	maxWait := time.Hour // ctx's deadline (stages.test.timeout) ends it first
	if d, ok := ctx.Deadline(); ok {
		maxWait = time.Until(d) + time.Minute
	}
	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 2*time.Second, 15*time.Second
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, maxWait)
	if err != nil {
		return ec2types.Instance{}, instanceNotRunning(ctx, c, region, id, err)
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if aws.ToString(inst.InstanceId) == id {
				return inst, nil
			}
		}
	}
	return ec2types.Instance{}, fmt.Errorf("%s in %s: running, but not described", id, region)
}

// instanceNotRunning explains why the instance never ran. The SDK's waiter
// only says it reached a failure state, so the instance is described for its
// state and EC2's reason. A Client.* reason (the AMI's KMS key is unusable,
// the account's volume limit is reached) happens again on every launch, so it
// is permanent; a Server.* reason or none is retryable. A user or another
// process terminating the instance is no fault of the AMI.
func instanceNotRunning(ctx context.Context, c EC2API, region, id string, waitErr error) error {
	what := fmt.Sprintf("wait for %s to run in %s", id, region)
	if ctx.Err() != nil {
		return awsx.Classify(waitErr, what)
	}
	inst, err := describeInstance(ctx, c, region, id)
	if err != nil || inst == nil || inst.State == nil || alive(*inst) {
		return awsx.Classify(waitErr, what)
	}
	code, msg := "", ""
	if r := inst.StateReason; r != nil {
		code, msg = aws.ToString(r.Code), aws.ToString(r.Message)
	}
	text := fmt.Sprintf("%s: the instance is %s", what, inst.State.Name)
	if code != "" || msg != "" {
		text += fmt.Sprintf(" (%s: %s)", code, msg)
	}
	if strings.HasPrefix(code, "Client.") && code != "Client.UserInitiatedShutdown" {
		return permanent(ErrTestInstanceFailed, "%s; launching %s again would fail the same way: check the AMI's KMS key, "+
			"the account's limits and stages.test", text, id)
	}
	return fmt.Errorf("%s: %w", text, waitErr)
}

// describeInstance returns the instance, or nil when EC2 does not know it.
func describeInstance(ctx context.Context, c EC2API, region, id string) (*ec2types.Instance, error) {
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if hasErrorCode(err, "InvalidInstanceID.NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, awsx.Classify(err, fmt.Sprintf("describe %s in %s", id, region))
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			if aws.ToString(inst.InstanceId) == id {
				return &inst, nil
			}
		}
	}
	return nil, nil
}

func alive(inst ec2types.Instance) bool {
	if inst.State == nil {
		return false
	}
	s := inst.State.Name
	return s == ec2types.InstanceStateNamePending || s == ec2types.InstanceStateNameRunning
}

// terminateTestInstance terminates the instance the checkpoint names, on a
// context that outlives the activity's, so it also happens when the run was
// cancelled or timed out. A failure is logged and recorded in res: the
// instance, tagged kiln:run, must then be terminated by hand.
func (a *Activities) terminateTestInstance(ctx context.Context, c EC2API, hb *heartbeater[testCheckpoint], out *countingWriter, log zerolog.Logger, res *TestResult) {
	id := hb.get().InstanceID
	if id == "" {
		return
	}
	res.InstanceID = id
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), terminateTimeout)
	defer cancel()
	_, err := c.TerminateInstances(tctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil && !hasErrorCode(err, "InvalidInstanceID.NotFound") {
		res.TerminateError = awsx.Classify(err, fmt.Sprintf("terminate %s in %s", id, res.Region)).Error()
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
		res.InstanceID, res.Region, res.TerminateError, TagRun)
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
