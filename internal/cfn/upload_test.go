package cfn_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/cfn"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// TestUploadToMoto publishes a tag's templates the way the publish stage
// will, then reads them back as CloudFormation would.
func TestUploadToMoto(t *testing.T) {
	ctx := context.Background()
	moto := motoserver.Start(t)
	c := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(moto.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		UsePathStyle: true,
	})
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("templates")})
	require.NoError(t, err)

	prefix := cfn.KeyPrefix("main", "v1.2.3", 0)
	objs, err := cfn.Render(prefix, []cfn.Object{
		{Key: "mozdef-parent.yml", Body: []byte(intrinsics)},
		{Key: "app.json", Body: []byte(jsonTemplate)},
	}, amis, cfn.Options{ParametersFile: true, Region: "us-west-2"})
	require.NoError(t, err)

	urls, err := cfn.Upload(ctx, c, "templates", objs)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"s3://templates/v1.2.3/mozdef-parent.yml",
		"s3://templates/v1.2.3/app.json",
		"s3://templates/v1.2.3/parameters-us-west-2.json",
	}, urls)
	// A retried activity uploads again; the result is the same.
	again, err := cfn.Upload(ctx, c, "templates", objs)
	require.NoError(t, err)
	assert.Equal(t, urls, again)

	body, ctype := get(t, c, "v1.2.3/mozdef-parent.yml")
	assert.Equal(t, "application/x-yaml", ctype)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(body, &doc))
	top := doc.Content[0]
	var got map[string]map[string]string
	require.NoError(t, value(value(top, "Mappings"), "AMIRegionMap").Decode(&got))
	assert.Equal(t, "ami-0b2", got["us-west-2"]["AMI"])
	assert.Len(t, got, 3)
	props := value(value(value(top, "Resources"), "Inst"), "Properties")
	assert.Equal(t, "!FindInMap", value(props, "ImageId").Tag)
	ref := value(props, "ImageId").Content[1]
	assert.Equal(t, []string{"!Ref", "AWS::Region"}, []string{ref.Tag, ref.Value})
	out := value(value(value(top, "Outputs"), "Id"), "Value")
	assert.Equal(t, []string{"!Ref", "Inst"}, []string{out.Tag, out.Value})

	body, ctype = get(t, c, "v1.2.3/parameters-us-west-2.json")
	assert.Equal(t, "application/json", ctype)
	assert.JSONEq(t, `[{"ParameterKey": "AMI", "ParameterValue": "ami-0b2"}]`, string(body))

	t.Run("MissingBucketIsPermanent", func(t *testing.T) {
		_, err := cfn.Upload(ctx, c, "no-such-bucket", objs[:1])
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), "%v", err)
		assert.True(t, appErr.NonRetryable())
		assert.Equal(t, awsx.TypeNotFound, appErr.Type())
		assert.Contains(t, err.Error(), "upload s3://no-such-bucket/v1.2.3/mozdef-parent.yml")
	})
}

func get(t *testing.T, c *s3.Client, key string) ([]byte, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String("templates"), Key: aws.String(key)})
	require.NoError(t, err)
	defer out.Body.Close()
	body, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return body, aws.ToString(out.ContentType)
}

// stubS3 panics on PutObject: Upload must refuse bad input before calling it.
type stubS3 struct{ cfn.S3API }

func TestUploadRejectsBadKeys(t *testing.T) {
	for _, key := range []string{"", "/abs.yaml", "dir/"} {
		_, err := cfn.Upload(context.Background(), stubS3{}, "b", []cfn.Object{{Key: key}})
		assert.ErrorContains(t, err, "must name a file", "key %q", key)
	}
	_, err := cfn.Upload(context.Background(), stubS3{}, "", nil)
	assert.EqualError(t, err, "no S3 bucket to upload the templates to")
}

func TestKeyPrefix(t *testing.T) {
	tests := []struct {
		branch, tag string
		pr          int
		want        string
	}{
		{"main", "", 0, "main/"},
		{"master", "v1.2.3", 0, "v1.2.3/"}, // a tag push names the tag
		{"", "refs/tags/v1.2.3", 0, "v1.2.3/"},
		{"refs/heads/main", "", 0, "main/"},
		{"feature/x", "", 42, "pr-42/"}, // a review names the PR, not its branch
		{"release/1.2", "", 0, "release/1.2/"},
		{"feat/a+b #1", "", 0, "feat/a-b--1/"},
		{"fix/ünï", "", 0, "fix/-n-/"},
		{"a//b/../c/", "", 0, "a/b/c/"},
		{"", "", 0, ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cfn.KeyPrefix(tt.branch, tt.tag, tt.pr), "%+v", tt)
	}
}

func TestTemplateURL(t *testing.T) {
	assert.Equal(t, "https://templates.s3.eu-west-1.amazonaws.com/v1.2.3/app%20x.yaml",
		cfn.TemplateURL("templates", "eu-west-1", "v1.2.3/app x.yaml"))
}
