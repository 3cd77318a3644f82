package activities

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
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

var lagInput = CopyInput{RunID: "p/main/1", Source: SourceAMI{Region: "us-east-1", AMI: "ami-src"}, Region: "eu-west-1"}

// TestCopyTagsWhenEC2CatchesUp: a new copy EC2 does not know for a moment
// is tagged once it does, instead of failing the copy as not found.
func TestCopyTagsWhenEC2CatchesUp(t *testing.T) {
	fastTagRetries(t)
	f := &laggingEC2{unknown: 2}
	id, err := copyImage(context.Background(), f, lagInput, &sourceImage{name: "n"}, "copy")
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
	_, err := copyImage(context.Background(), f, lagInput, &sourceImage{name: "n"}, "copy")
	require.Error(t, err)
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
	_, err := copyImage(ctx, &laggingEC2{unknown: 100}, lagInput, &sourceImage{name: "n"}, "copy")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
