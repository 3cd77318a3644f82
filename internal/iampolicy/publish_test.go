package iampolicy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
)

// TestPublishAndNotifyStatements: the builder may put objects under the
// templates' bucket only, push only to the ECR repositories the pipeline
// names (a registry elsewhere needs nothing from IAM), mail through SES and
// publish to exactly its topic.
func TestPublishAndNotifyStatements(t *testing.T) {
	p := config.Pipeline{Name: "app", Stages: config.Stages{
		Build: &config.BuildStage{},
		Publish: &config.PublishStage{
			Images: []config.ImagePublish{
				{Name: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/app"},
				{Name: "registry.example.com/acme/app"},
			},
			CloudFormation: &config.CloudFormationPublish{Bucket: "acme-templates"},
		},
	}, Notify: &config.Notify{
		Email: &config.EmailNotify{From: "ci@example.com"},
		SNS:   &config.SNSNotify{TopicARN: "arn:aws:sns:us-east-1:123456789012:builds"},
	}}
	pol, err := Generate(p, Options{})
	require.NoError(t, err)
	got := map[string]Statement{}
	for _, s := range pol.Builder.Statement {
		got[s.Sid] = s
	}
	assert.Equal(t, []string{"arn:aws:s3:::acme-templates/*"}, got["KilnUploadsTemplatesUnderTheBucket"].Resource)
	assert.Equal(t, []string{"arn:aws:ecr:eu-west-1:123456789012:repository/acme/app"},
		got["KilnPushesExactlyItsECRRepositories"].Resource)
	assert.Contains(t, got["KilnPushesExactlyItsECRRepositories"].Action, "ecr:PutImage")
	assert.Equal(t, []string{"ecr:GetAuthorizationToken"}, got["KilnLogsInToECRAnyResourceAsTheTokenIsPerAccount"].Action)
	assert.Equal(t, []string{"arn:aws:sns:us-east-1:123456789012:builds"}, got["KilnPublishesToExactlyItsTopic"].Resource)
	assert.Contains(t, got, "KilnMailsThroughSESAnyIdentityTheFromAddressMustBeVerified")

	p.Notify.Email.Via, p.Notify.SNS = "smtp", nil
	p.Stages.Publish = nil
	_, err = Generate(p, Options{})
	assert.ErrorContains(t, err, "makes no AWS calls", "SMTP and a build need no IAM policy")
}
