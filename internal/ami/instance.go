package ami

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// terminateTimeout bounds terminating a test instance, which runs on a
// context of its own so that a cancelled or timed-out run still does it.
const terminateTimeout = 2 * time.Minute

// TestInstance is an instance to launch from an AMI and test it on.
type TestInstance struct {
	Region, AMI, InstanceType string
	// SubnetID is empty for EC2's default subnet.
	SubnetID         string
	SecurityGroupIDs []string
	// Token is RunInstances' ClientToken: a retry that sends the same gets
	// the same instance back.
	Token string
	// Pipeline, Commit and RunID tag the instance, so that one left running
	// is found by its run.
	Pipeline, Commit, RunID string
}

// Launch launches the instance, which terminates itself when shut down, and
// returns its ID as soon as EC2 does.
func Launch(ctx context.Context, c EC2API, t TestInstance) (string, error) {
	req := &ec2.RunInstancesInput{
		ImageId:                           aws.String(t.AMI),
		InstanceType:                      ec2types.InstanceType(t.InstanceType),
		MinCount:                          aws.Int32(1),
		MaxCount:                          aws.Int32(1),
		ClientToken:                       aws.String(t.Token),
		SecurityGroupIds:                  t.SecurityGroupIDs,
		InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorTerminate,
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{
				{Key: aws.String("Name"), Value: aws.String("kiln-test " + t.Pipeline)},
				{Key: aws.String(TagRun), Value: aws.String(t.RunID)},
				{Key: aws.String(TagPipeline), Value: aws.String(t.Pipeline)},
				{Key: aws.String(TagCommit), Value: aws.String(t.Commit)},
			},
		}},
	}
	if t.SubnetID != "" {
		req.SubnetId = aws.String(t.SubnetID)
	}
	run, err := c.RunInstances(ctx, req)
	if err != nil {
		return "", awsx.Classify(err, fmt.Sprintf("launch a %s from %s in %s", t.InstanceType, t.AMI, t.Region))
	}
	if len(run.Instances) == 0 {
		return "", fmt.Errorf("launch from %s in %s: EC2 returned no instance", t.AMI, t.Region)
	}
	return aws.ToString(run.Instances[0].InstanceId), nil
}

// WaitRunning polls until the instance runs, and returns it as then
// described. An instance that stops on the way is explained: see
// notRunning.
func WaitRunning(ctx context.Context, c EC2API, region, id string) (ec2types.Instance, error) {
	maxWait := time.Hour // ctx's deadline (stages.test.timeout) ends it first
	if d, ok := ctx.Deadline(); ok {
		maxWait = time.Until(d) + time.Minute
	}
	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 2*time.Second, 15*time.Second
	})
	out, err := w.WaitForOutput(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, maxWait)
	if err != nil {
		return ec2types.Instance{}, notRunning(ctx, c, region, id, err)
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

// notRunning explains why the instance never ran. The SDK's waiter only
// says it reached a failure state, so the instance is described for its
// state and EC2's reason. A Client.* reason (the AMI's KMS key is unusable,
// the account's volume limit is reached) happens again on every launch, so
// it is permanent (ErrInstanceFailed); a Server.* reason or none is
// retryable. A user or another process terminating the instance is no fault
// of the AMI.
func notRunning(ctx context.Context, c EC2API, region, id string, waitErr error) error {
	what := fmt.Sprintf("wait for %s to run in %s", id, region)
	if ctx.Err() != nil {
		return awsx.Classify(waitErr, what)
	}
	inst, err := DescribeInstance(ctx, c, region, id)
	if err != nil || inst == nil || inst.State == nil || Alive(*inst) {
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
		return fail(ErrInstanceFailed, "%s; launching %s again would fail the same way: check the AMI's KMS key, "+
			"the account's limits and stages.test", text, id)
	}
	return fmt.Errorf("%s: %w", text, waitErr)
}

// DescribeInstance returns the instance, or nil when EC2 does not know it.
func DescribeInstance(ctx context.Context, c EC2API, region, id string) (*ec2types.Instance, error) {
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

// Alive reports whether the instance is pending or running.
func Alive(inst ec2types.Instance) bool {
	if inst.State == nil {
		return false
	}
	s := inst.State.Name
	return s == ec2types.InstanceStateNamePending || s == ec2types.InstanceStateNameRunning
}

// Terminate terminates the instance on a context that outlives ctx's
// cancellation, bounded on its own, so that a cancelled or timed-out run
// still does it. An instance EC2 no longer knows is terminated already.
func Terminate(ctx context.Context, c EC2API, region, id string) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), terminateTimeout)
	defer cancel()
	_, err := c.TerminateInstances(tctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil && !hasErrorCode(err, "InvalidInstanceID.NotFound") {
		return awsx.Classify(err, fmt.Sprintf("terminate %s in %s", id, region))
	}
	return nil
}
