package ami

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// laggingEC2 copies to ami-new, which CreateTags does not know for the first
// unknown calls: EC2's eventual consistency right after CopyImage.
type laggingEC2 struct {
	EC2API
	unknown int

	mu     sync.Mutex
	tagged int
	tries  int
}

func (f *laggingEC2) CopyImage(context.Context, *ec2.CopyImageInput, ...func(*ec2.Options)) (*ec2.CopyImageOutput, error) {
	return &ec2.CopyImageOutput{ImageId: aws.String("ami-new")}, nil
}

func (f *laggingEC2) CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.tries <= f.unknown {
		return nil, &smithy.OperationError{ServiceID: "EC2", OperationName: "CreateTags",
			Err: &smithy.GenericAPIError{Code: "InvalidAMIID.NotFound", Message: "The image id '[ami-new]' does not exist"}}
	}
	f.tagged++
	return &ec2.CreateTagsOutput{}, nil
}

func fastTagRetries(t *testing.T) {
	prev := newCopyTagDelays
	newCopyTagDelays = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	t.Cleanup(func() { newCopyTagDelays = prev })
}

var lagRequest = CopyRequest{SourceRegion: "us-east-1", SourceAMI: "ami-src", Name: "n", RunID: "p/main/1", Token: "kiln-1"}

// TestCopyTagsWhenEC2CatchesUp: a new copy EC2 does not know for a moment
// is tagged once it does, instead of failing the copy as not found.
func TestCopyTagsWhenEC2CatchesUp(t *testing.T) {
	fastTagRetries(t)
	f := &laggingEC2{unknown: 2}
	id, err := Copy(context.Background(), f, lagRequest, "copy")
	require.NoError(t, err)
	assert.Equal(t, "ami-new", id)
	assert.Equal(t, 3, f.tries)
	assert.Equal(t, 1, f.tagged)
}

// TestCopyTagsStillUnknownIsRetryable: a copy EC2 keeps not knowing fails
// the attempt, retryably: the copy exists and the next attempt finds it.
func TestCopyTagsStillUnknownIsRetryable(t *testing.T) {
	fastTagRetries(t)
	f := &laggingEC2{unknown: 100}
	id, err := Copy(context.Background(), f, lagRequest, "copy")
	require.Error(t, err)
	assert.Equal(t, "ami-new", id, "the copy exists")
	var appErr *temporal.ApplicationError
	assert.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "must be retryable: %v", err)
	assert.Contains(t, err.Error(), "ami-new")
	assert.Equal(t, len(newCopyTagDelays)+1, f.tries)
}

// TestCopyTagsHonoursCancel: a cancelled activity does not sit out the waits.
func TestCopyTagsHonoursCancel(t *testing.T) {
	prev := newCopyTagDelays
	newCopyTagDelays = []time.Duration{time.Hour}
	t.Cleanup(func() { newCopyTagDelays = prev })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Copy(ctx, &laggingEC2{unknown: 100}, lagRequest, "copy")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

// failingImages answers DescribeImages with a copy AWS failed.
type failingImages struct{ EC2API }

func (failingImages) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &ec2.DescribeImagesOutput{Images: []ec2types.Image{{ImageId: aws.String("ami-new"), State: ec2types.ImageStateFailed,
		StateReason: &ec2types.StateReason{Message: aws.String("Client.InvalidKMSKey.InvalidState")}}}}, nil
}

// TestWaitForFailedCopy: a copy AWS fails is permanent, with AWS's reason.
func TestWaitForFailedCopy(t *testing.T) {
	_, err := WaitAvailable(context.Background(), failingImages{}, "ami-new", time.Millisecond, "copy ami-1 to eu-west-1")
	require.ErrorIs(t, err, ErrCopyFailed)
	assert.Equal(t, "copy ami-1 to eu-west-1: AWS failed the copy ami-new (failed): Client.InvalidKMSKey.InvalidState", err.Error())
}

// TestCopyTagsKeepTheSourcesButAWSs: a copy gets the source's tags, but
// not those AWS reserves nor the source's own marks, and marks of its own.
func TestCopyTagsKeepTheSourcesButAWSs(t *testing.T) {
	src := []ec2types.Tag{
		{Key: aws.String("team"), Value: aws.String("platform")},
		{Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("s")},
		{Key: aws.String(TagSource), Value: aws.String("ami-older")},
	}
	got := tagValues(CopyTags(CopyRequest{SourceAMI: "ami-src", KMSKey: "k"}, src))
	assert.Equal(t, map[string]string{"team": "platform", TagSource: "ami-src", TagCopyKey: "k"}, got)
	assert.Equal(t, "none", tagValues(CopyTags(CopyRequest{SourceAMI: "ami-src"}, nil))[TagCopyKey])
}
