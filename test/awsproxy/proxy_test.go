package awsproxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// sourceAMI exists in every region of a fresh moto.
const sourceAMI = "ami-1e749f67"

// TestProxyAgainstMoto shares one moto_server between subtests: starting it
// and loading its AMI data costs seconds.
func TestProxyAgainstMoto(t *testing.T) {
	moto := motoserver.Start(t)
	for _, tc := range []struct {
		name string
		test func(*testing.T, *awsproxy.Proxy)
	}{
		{"RecordsCopyImageParams", testRecordsCopyImageParams},
		{"ThrottleTwiceThenSucceed", testThrottleTwiceThenSucceed},
		{"KMSThrottleIsJSON", testKMSThrottle},
		{"ResetIsRetried", testResetIsRetried},
		{"DownRegionFailsEveryAction", testDownRegion},
		{"PendingForHoldsTheWaiter", testPendingFor},
		{"DelayHoldsTheAction", testDelay},
		{"DeniedEC2IsNotRetried", testDeniedEC2},
		{"DeniedSTSOnlyForMatchingRole", testDeniedSTSMatch},
		{"DeniedKMSIsJSON", testDeniedKMS},
		{"AccountsFromAssumeRole", testAccountsFromAssumeRole},
		{"ShareAcrossAccountsCopy", testShareAcrossAccounts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := moto.Reset(); err != nil {
				t.Fatal(err)
			}
			tc.test(t, awsproxy.Start(t, moto.URL))
		})
	}
}

// ec2Client talks to the proxy in region with dummy keys and fast retries.
func ec2Client(t *testing.T, p *awsproxy.Proxy, region string, attempts int) *ec2.Client {
	t.Helper()
	return ec2.NewFromConfig(awsConfig(t, p, region, attempts))
}

// awsConfig is an SDK config for the proxy with dummy keys and fast retries.
func awsConfig(t *testing.T, p *awsproxy.Proxy, region string, attempts int) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithBaseEndpoint(p.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 200 * time.Millisecond
			})
		}),
	)
	require.NoError(t, err)
	return cfg
}

// copyImage copies sourceAMI from us-east-1 into the client's region.
func copyImage(t *testing.T, c *ec2.Client) (*ec2.CopyImageOutput, error) {
	t.Helper()
	return c.CopyImage(context.Background(), &ec2.CopyImageInput{
		Name:          aws.String("kiln-test"),
		SourceImageId: aws.String(sourceAMI),
		SourceRegion:  aws.String("us-east-1"),
		Encrypted:     aws.Bool(true),
		KmsKeyId:      aws.String("alias/kiln"),
		ClientToken:   aws.String("run-1-copy-eu-west-1"),
	})
}

// The proxy records what moto ignores, so tests can assert on it.
func testRecordsCopyImageParams(t *testing.T, p *awsproxy.Proxy) {
	_, err := copyImage(t, ec2Client(t, p, "eu-west-1", 1))
	require.NoError(t, err)

	reqs := p.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "CopyImage", r.Action)
	assert.Equal(t, "ec2", r.Service)
	assert.Equal(t, "eu-west-1", r.Region)
	assert.Equal(t, "AKIDTEST", r.AccessKeyID)
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "true", r.Params.Get("Encrypted"))
	assert.Equal(t, "alias/kiln", r.Params.Get("KmsKeyId"))
	assert.Equal(t, "run-1-copy-eu-west-1", r.Params.Get("ClientToken"))
	assert.Equal(t, sourceAMI, r.Params.Get("SourceImageId"))
}

// Injected throttling looks real enough that the SDK retries it.
func testThrottleTwiceThenSucceed(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Action: "CopyImage", Region: "eu-west-1", Times: 2, Kind: awsproxy.Throttle})
	_, err := copyImage(t, ec2Client(t, p, "eu-west-1", 5))
	require.NoError(t, err)

	assert.Equal(t, 3, p.Count("CopyImage", nil))
	assert.Equal(t, 2, p.Count("CopyImage", func(r awsproxy.Request) bool {
		return r.Fault == awsproxy.Throttle && r.Status == 400
	}))
}

// JSON APIs get a JSON throttling error, which the SDK also retries.
func testKMSThrottle(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Service: "kms", Action: "CreateKey", Times: 1, Kind: awsproxy.Throttle})
	_, err := kms.NewFromConfig(awsConfig(t, p, "us-east-1", 3)).CreateKey(context.Background(), &kms.CreateKeyInput{})
	require.NoError(t, err)

	reqs := p.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "kms", reqs[0].Service)
	assert.Equal(t, awsproxy.Throttle, reqs[0].Fault)
	assert.Equal(t, 200, reqs[1].Status)
}

// A reset connection is a transient error the SDK retries.
func testResetIsRetried(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Action: "CopyImage", Times: 1, Kind: awsproxy.Reset})
	_, err := copyImage(t, ec2Client(t, p, "eu-west-1", 3))
	require.NoError(t, err)

	reqs := p.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, awsproxy.Reset, reqs[0].Fault)
	assert.Equal(t, 0, reqs[0].Status)
	assert.Equal(t, 200, reqs[1].Status)
}

// A Down region fails every action there until cleared; others still work.
func testDownRegion(t *testing.T, p *awsproxy.Proxy) {
	p.Fail(awsproxy.Rule{Region: "eu-west-1", Times: -1, Kind: awsproxy.Down})
	_, err := copyImage(t, ec2Client(t, p, "eu-west-1", 2))
	require.Error(t, err)
	var maxErr *retry.MaxAttemptsError
	assert.True(t, errors.As(err, &maxErr), "want retries exhausted, got %v", err)
	assert.Equal(t, 2, p.Count("", nil))

	_, err = copyImage(t, ec2Client(t, p, "us-west-2", 1))
	require.NoError(t, err)

	p.ClearFaults()
	_, err = copyImage(t, ec2Client(t, p, "eu-west-1", 1))
	require.NoError(t, err)
}

// PendingFor makes a copy pending for d, so the SDK's waiter really waits.
func testPendingFor(t *testing.T, p *awsproxy.Proxy) {
	const d = 2 * time.Second
	p.PendingFor(d)
	c := ec2Client(t, p, "eu-west-1", 1)
	start := time.Now()
	out, err := copyImage(t, c)
	require.NoError(t, err)

	w := ec2.NewImageAvailableWaiter(c, func(o *ec2.ImageAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, 500*time.Millisecond
	})
	err = w.Wait(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{*out.ImageId}}, 30*time.Second)
	require.NoError(t, err)

	waited := time.Since(start)
	assert.GreaterOrEqual(t, waited, d, "waiter returned before the copy was available")
	assert.Less(t, waited, 20*time.Second, "sanity: waiter should end soon after d")
	assert.Greater(t, p.Count("DescribeImages", nil), 1)
}

// Delay holds only the named action.
func testDelay(t *testing.T, p *awsproxy.Proxy) {
	const d = 500 * time.Millisecond
	p.Delay("DescribeImages", d)
	c := ec2Client(t, p, "us-east-1", 1)
	start := time.Now()
	_, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{ImageIds: []string{sourceAMI}})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), d)
}
