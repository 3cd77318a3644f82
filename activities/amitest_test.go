package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/internal/hostuser"
)

// fakeEC2 launches i-1, reports it in state, and records what was tagged and
// terminated. Calls it does not override panic through the nil interface.
type fakeEC2 struct {
	ami.EC2API
	state        ec2types.InstanceStateName
	reason       *ec2types.StateReason
	terminateErr error
	runErr       error

	mu         sync.Mutex
	launches   []*ec2.RunInstancesInput
	terminated []string
	tags       map[string]string
}

func (f *fakeEC2) RunInstances(_ context.Context, in *ec2.RunInstancesInput, _ ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.launches = append(f.launches, in)
	if f.runErr != nil {
		return nil, f.runErr
	}
	return &ec2.RunInstancesOutput{Instances: []ec2types.Instance{{InstanceId: aws.String("i-1")}}}, nil
}

func (f *fakeEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{{
		InstanceId: aws.String("i-1"), PrivateIpAddress: aws.String("10.0.0.9"),
		State: &ec2types.InstanceState{Name: f.state}, StateReason: f.reason,
	}}}}}, nil
}

func (f *fakeEC2) TerminateInstances(_ context.Context, in *ec2.TerminateInstancesInput, _ ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated = append(f.terminated, in.InstanceIds...)
	return &ec2.TerminateInstancesOutput{}, f.terminateErr
}

func (f *fakeEC2) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &ec2.DescribeImagesOutput{}, nil
}

func (f *fakeEC2) CreateTags(_ context.Context, in *ec2.CreateTagsInput, _ ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range in.Tags {
		f.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &ec2.CreateTagsOutput{}, nil
}

// runTest runs TestAMI against fake with the given commands, in a one-commit
// repository.
func runTest(t *testing.T, fake *fakeEC2, commands ...string) (*TestResult, error) {
	t.Helper()
	return resumeTest(t, fake, nil, commands...)
}

// resumeTest is runTest for an attempt that finds prev as its heartbeat details.
func resumeTest(t *testing.T, fake *fakeEC2, prev *testCheckpoint, commands ...string) (*TestResult, error) {
	t.Helper()
	fake.tags = map[string]string{}
	in := testInput(t, commands...)
	a := &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), AWS: fakeAWS{ec2: fake}}
	return executeTest(t, a, in, prev)
}

// testInput tests ami-1 in us-east-1 with the commands, in a one-commit
// repository.
func testInput(t *testing.T, commands ...string) TestInput {
	t.Helper()
	repo := t.TempDir()
	head, err := gitx.InitRepo(context.Background(), repo, fstest.MapFS{"README": {Data: []byte("hi\n")}}, "initial")
	require.NoError(t, err)
	return TestInput{
		RunID: "p/main/1", Pipeline: "p",
		Plan: Plan{CloneURL: repo, Commit: head, Bake: &config.BakeStage{Region: "us-east-1"},
			Test: &config.TestStage{Commands: commands}},
		AMIs: map[string]string{"us-east-1": "ami-1"},
	}
}

// executeTest runs TestAMI in an activity environment; prev, if not nil, is
// the heartbeat details an earlier attempt left.
func executeTest(t *testing.T, a *Activities, in TestInput, prev *testCheckpoint) (*TestResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if prev != nil {
		env.SetHeartbeatDetails(*prev)
	}
	v, err := env.ExecuteActivity(a.TestAMI, in)
	if err != nil {
		return nil, err
	}
	var res TestResult
	require.NoError(t, v.Get(&res))
	return &res, nil
}

// TestAMIInstanceDiesTerminatesAndRetries: an instance that never runs is an
// infrastructure failure: retryable, nothing tagged, and still terminated.
func TestAMIInstanceDiesTerminatesAndRetries(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameTerminated}
	_, err := runTest(t, fake, "true")
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		assert.False(t, appErr.NonRetryable(), "%v", err)
	}
	assert.Equal(t, []string{"i-1"}, fake.terminated)
	assert.Empty(t, fake.tags, "an infrastructure failure tags nothing")
	require.Len(t, fake.launches, 1)
	l := fake.launches[0]
	assert.Equal(t, InstanceClientToken("p/main/1", "us-east-1", "ami-1", 1), aws.ToString(l.ClientToken))
	assert.Equal(t, ec2types.InstanceType(config.DefaultTestInstanceType), l.InstanceType)
	assert.Nil(t, l.SubnetId, "no subnet configured: EC2's default")
}

// TestAMITerminateFailureRecorded: a passed test whose instance cannot be
// terminated still passes, and says so in its result.
func TestAMITerminateFailureRecorded(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameRunning, terminateErr: errors.New("connection reset")}
	res, err := runTest(t, fake, `test "$KILN_INSTANCE_IP" = 10.0.0.9`)
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Equal(t, TestPassed, fake.tags[ami.TagTest])
	assert.Contains(t, res.TerminateError, "terminate i-1 in us-east-1")
}

// TestInstanceClientToken: the token is stable across attempts, differs by
// run, AMI and launch, and fits EC2's 64 characters.
func TestInstanceClientToken(t *testing.T) {
	tok := InstanceClientToken("p/main/1", "us-east-1", "ami-1", 1)
	assert.Equal(t, tok, InstanceClientToken("p/main/1", "us-east-1", "ami-1", 1))
	assert.NotEqual(t, tok, InstanceClientToken("p/main/2", "us-east-1", "ami-1", 1))
	assert.NotEqual(t, tok, InstanceClientToken("p/main/1", "us-east-1", "ami-2", 1))
	assert.NotEqual(t, tok, InstanceClientToken("p/main/1", "us-east-1", "ami-1", 2))
	assert.LessOrEqual(t, len(tok), 64)
}

// TestAMIRetryTakesOverInstance: a retry whose checkpoint names a running
// instance tests on it instead of launching another, and terminates it.
func TestAMIRetryTakesOverInstance(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameRunning}
	res, err := resumeTest(t, fake, &testCheckpoint{Step: "commands", Launch: 1, InstanceID: "i-1"}, "true")
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Empty(t, fake.launches, "the running instance is reused")
	assert.Equal(t, []string{"i-1"}, fake.terminated)
}

// TestAMIRetryAfterTerminatedLaunchesNext: when the checkpoint's instance is
// gone (an earlier attempt terminated it), the retry launches with the next
// launch's token: reusing the first token would get the dead instance back.
func TestAMIRetryAfterTerminatedLaunchesNext(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameTerminated}
	_, err := resumeTest(t, fake, &testCheckpoint{Step: "waiting", Launch: 1, InstanceID: "i-1"}, "true")
	require.Error(t, err) // the fake's new instance is terminated too
	require.Len(t, fake.launches, 1)
	assert.Equal(t, InstanceClientToken("p/main/1", "us-east-1", "ami-1", 2), aws.ToString(fake.launches[0].ClientToken))
}

// TestAMIPermanentAWSErrorStaysPermanent: a subnet EC2 does not know is a
// configuration error: it reaches Temporal as awsx's non-retryable type.
func TestAMIPermanentAWSErrorStaysPermanent(t *testing.T) {
	fake := &fakeEC2{runErr: &smithy.OperationError{ServiceID: "EC2", OperationName: "RunInstances",
		Err: &smithy.GenericAPIError{Code: "InvalidSubnetID.NotFound", Message: "no such subnet"}}}
	_, err := runTest(t, fake, "true")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.Equal(t, awsx.TypeNotFound, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Empty(t, fake.terminated, "nothing was launched")
}

// fakeAWS hands out fixed clients, whatever the region and principal.
type fakeAWS struct {
	ec2 ami.EC2API
	kms ami.KMSAPI
}

func (f fakeAWS) EC2(context.Context, string, ami.Principal) (ami.EC2API, error) { return f.ec2, nil }
func (f fakeAWS) KMS(context.Context, string, ami.Principal) (ami.KMSAPI, error) { return f.kms, nil }
func (f fakeAWS) SSM(context.Context, string, ami.Principal) (ami.SSMAPI, error) { return nil, nil }

// TestAMIInstanceFailsForClientReason: an instance EC2 terminates for a
// Client.* reason (an unusable KMS key) would die the same way on every
// launch: the error is permanent and carries the state and EC2's reason.
func TestAMIInstanceFailsForClientReason(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameTerminated, reason: &ec2types.StateReason{
		Code:    aws.String("Client.InvalidKMSKey.InvalidState"),
		Message: aws.String("Client.InvalidKMSKey.InvalidState: The KMS key provided is in an incorrect state"),
	}}
	_, err := runTest(t, fake, "true")
	appErr := requireAppError(t, err, ErrTestInstanceFailed)
	assert.Contains(t, appErr.Message(), "i-1")
	assert.Contains(t, appErr.Message(), "is terminated")
	assert.Contains(t, appErr.Message(), "The KMS key provided is in an incorrect state")
	assert.Equal(t, []string{"i-1"}, fake.terminated)
	assert.Empty(t, fake.tags, "an instance that never ran tags nothing")
}

// TestAMIInstanceFailsForServerReason: a Server.* reason (EC2 had no
// capacity) is retryable, and says why.
func TestAMIInstanceFailsForServerReason(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameTerminated, reason: &ec2types.StateReason{
		Code:    aws.String("Server.InsufficientInstanceCapacity"),
		Message: aws.String("Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request"),
	}}
	_, err := runTest(t, fake, "true")
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.False(t, appErr.NonRetryable(), "%v", err)
	assert.Contains(t, err.Error(), "is terminated")
	assert.Contains(t, err.Error(), "Server.InsufficientInstanceCapacity")
}

// TestAMIFailedTestReportsLeakedInstance: when the test fails and its
// instance cannot be terminated, the result saying so is discarded, so the
// error names the instance, its region and AWS's error, and stays permanent.
func TestAMIFailedTestReportsLeakedInstance(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameRunning, terminateErr: errors.New("connection reset")}
	_, err := runTest(t, fake, "exit 3")
	appErr := requireAppError(t, err, ErrAMITestFailed)
	for _, want := range []string{"i-1", "us-east-1", "connection reset", "terminate it by hand"} {
		assert.Contains(t, appErr.Message(), want)
	}
	assert.Equal(t, TestFailed, fake.tags[ami.TagTest])
}

// TestAMIInfrastructureFailureReportsLeakedInstance: the same for a
// retryable failure, which stays retryable.
func TestAMIInfrastructureFailureReportsLeakedInstance(t *testing.T) {
	fake := &fakeEC2{state: ec2types.InstanceStateNameTerminated, terminateErr: errors.New("connection reset")}
	_, err := runTest(t, fake, "true")
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%T: %v", err, err)
	assert.False(t, appErr.NonRetryable())
	assert.Contains(t, err.Error(), "the test instance i-1 in us-east-1 was left running")
	assert.Contains(t, err.Error(), "connection reset")
}

// TestWithLeakedInstance: a cancellation stays a cancellation, carrying the
// leak in its details; an application error keeps its type and
// retryability; no termination error changes nothing.
func TestWithLeakedInstance(t *testing.T) {
	res := &TestResult{Region: "us-east-1", InstanceID: "i-1", TerminateError: "terminate i-1 in us-east-1: connection reset"}

	err := withLeakedInstance(context.Canceled, res)
	var canceled *temporal.CanceledError
	require.True(t, errors.As(err, &canceled), "%T: %v", err, err)
	var details string
	require.NoError(t, canceled.Details(&details))
	assert.Contains(t, details, "i-1 in us-east-1 was left running")
	assert.Contains(t, details, "connection reset")

	err = withLeakedInstance(permanent(ErrAMITestTimedOut, "timed out"), res)
	appErr := requireAppError(t, err, ErrAMITestTimedOut)
	assert.Contains(t, appErr.Message(), "timed out\nthe test instance i-1")

	boom := errors.New("boom")
	assert.ErrorIs(t, withLeakedInstance(boom, res), boom)
	assert.Equal(t, boom, withLeakedInstance(boom, &TestResult{InstanceID: "i-1"}))
	assert.NoError(t, withLeakedInstance(nil, res))
}

// TestAMITestSecrets: the test commands get the secrets the stage
// declares, scrubbed from the log; a secret that cannot be read fails the
// test for good before any instance is launched.
func TestAMITestSecrets(t *testing.T) {
	t.Setenv("KILN_TEST_SSH_KEY", "ssh-key-0d9e2f")
	fake := &fakeEC2{state: ec2types.InstanceStateNameRunning}
	fake.tags = map[string]string{}
	in := testInput(t, `test "$SSH_KEY" = ssh-key-0d9e2f && echo "key is $SSH_KEY"`)
	in.Plan.Test.Secrets = map[string]config.DeclaredSecret{"SSH_KEY": {Env: "KILN_TEST_SSH_KEY"}}
	a := &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), AWS: fakeAWS{ec2: fake}}
	res, err := executeTest(t, a, in, nil)
	require.NoError(t, err)
	assert.True(t, res.Passed)
	log, err := os.ReadFile(res.LogPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), "key is <sensitive>")
	assert.NotContains(t, string(log), "ssh-key-0d9e2f")

	in.Plan.Test.Secrets["SSH_KEY"] = config.DeclaredSecret{Env: "KILN_TEST_NO_SUCH_KEY"}
	fake.launches = nil
	_, err = executeTest(t, a, in, nil)
	appErr := requirePermanent(t, err, ErrSecretUnavailable)
	assert.Contains(t, appErr.Message(), "stages.test.secrets.SSH_KEY")
	assert.Empty(t, fake.launches, "no instance for a test that cannot run")
}

// TestAMITestSeesNoWorkerSecrets: the test commands run with a clean
// environment: none of the worker's credentials reach them, only what the
// stage declares.
func TestAMITestSeesNoWorkerSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "worker-aws-secret-51ac")
	t.Setenv("REGISTRY_PASSWORD", "worker-registry-51ac")
	t.Setenv("GITHUB_TOKEN", "worker-github-51ac")
	fake := &fakeEC2{state: ec2types.InstanceStateNameRunning}
	fake.tags = map[string]string{}
	in := testInput(t, `env > "$OUT/env.txt"`, `id -u > "$OUT/uid.txt"`,
		`cat /proc/$PPID/environ > "$OUT/worker-environ.txt" 2>&1 || true`)
	out := sharedDir(t)
	in.Plan.Test.Env = map[string]string{"OUT": out}
	a := &Activities{DataDir: t.TempDir(), Log: zerolog.Nop(), AWS: fakeAWS{ec2: fake}}
	asRoot := withBuildUsers(t, a)
	res, err := executeTest(t, a, in, nil)
	require.NoError(t, err)
	require.True(t, res.Passed)
	env, err := os.ReadFile(filepath.Join(out, "env.txt"))
	require.NoError(t, err)
	for _, leak := range []string{"AWS_SECRET_ACCESS_KEY", "REGISTRY_PASSWORD", "GITHUB_TOKEN", "51ac"} {
		assert.NotContains(t, string(env), leak)
	}
	assert.Contains(t, string(env), "KILN_AMI_ID=", "kiln's own variables are there")
	if !asRoot {
		t.Log("not root: the commands run as the worker's user; their user is checked as root")
		return
	}
	uid, err := os.ReadFile(filepath.Join(out, "uid.txt"))
	require.NoError(t, err)
	assert.NotEqual(t, "0", strings.TrimSpace(string(uid)), "the test commands ran as root")
	worker, err := os.ReadFile(filepath.Join(out, "worker-environ.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(worker), "Permission denied")
	assert.NotContains(t, string(worker), "51ac", "the commands read the worker's environment")
}

// withBuildUsers gives a's host shells users of their own, as a root
// worker does, and says whether it could: it needs root.
func withBuildUsers(t *testing.T, a *Activities) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	users, err := hostuser.NewPool(hostuser.DefaultLockDir, hostuser.DefaultBase, hostuser.DefaultSize)
	require.NoError(t, err)
	a.BuildUsers, a.WorkDir = users, sharedDir(t)
	require.NoError(t, os.Chmod(a.WorkDir, 0o711))
	return true
}

// sharedDir is a temporary directory that build users can reach and write:
// t.TempDir's parent is closed to others.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-shared-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	return dir
}
