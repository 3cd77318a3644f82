package publish

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// runTimeout bounds one run; the runs here take a second or two.
const runTimeout = 90 * time.Second

// TestPublishAndImageTrigger: base publishes its image with the default tag
// rules; the app pipeline, which names that image in its trigger, starts
// with the new digest and publishes an image layered on it and a template
// with the AMI map; every stage was reported to the git host, and the
// outcome mailed. Publishing base again pushes nothing and triggers nothing.
func TestPublishAndImageTrigger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*runTimeout)
	defer cancel()
	base := mustRun(ctx, t, starter.ManualRun{Pipeline: "base", Ref: "main"})
	require.Len(t, base.Publish.Images, 1)
	img := base.Publish.Images[0]
	short := it.head[:7]
	assert.Equal(t, []string{"main", "latest", short}, img.Tags, "the default branch's default rules")
	assert.Empty(t, img.Skipped)
	assert.Equal(t, img.Digest, digestOf(t, "acme/base:latest"))
	assert.Equal(t, "base built at "+it.head+"\n", fileIn(t, "acme/base:"+short, "opt/base/base.txt"))

	require.Len(t, base.Publish.Triggered, 1, "the app pipeline names the base image")
	appID := base.Publish.Triggered[0]
	assert.True(t, strings.HasPrefix(appID, "app/HEAD/image-"), appID)
	var app workflows.PipelineResult
	require.NoError(t, it.temporal.Client.GetWorkflow(ctx, appID, "").Get(ctx, &app))

	require.NotNil(t, app.Bake)
	assert.Equal(t, it.ami, app.Bake.AMIs["us-east-1"], "the tested AMI was reused, Packer never ran")
	require.Len(t, app.Publish.Images, 1)
	assert.Equal(t, "image\n"+it.registry+"/acme/base\n"+img.Digest+"\n",
		fileIn(t, "acme/app:main", "srv/app.txt"), "the build saw the trigger as environment variables")
	assert.Equal(t, "base built at "+it.head+"\n", fileIn(t, "acme/app:main", "opt/base/base.txt"),
		"the app image is layered on the base image")

	tmpl := object(t, "main/cfn/app.yaml")
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(tmpl, &doc))
	assert.Contains(t, string(tmpl), "AMIRegionMap:\n    us-east-1:\n      AMI: "+it.ami)
	assert.Contains(t, string(tmpl), `!FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI]`)
	assert.Contains(t, string(tmpl), "!GetAtt Host.PrivateIp")
	assert.JSONEq(t, `[{"ParameterKey":"AMI","ParameterValue":"`+it.ami+`"}]`, string(object(t, "main/parameters-us-east-1.json")))

	statuses := func(pipeline, stage, state string) int {
		return it.github.count(func(r recorded) bool {
			return r.Method == http.MethodPost && r.Path == "/repos/acme/app/statuses/"+it.head &&
				r.Body["context"] == "kiln/"+pipeline+"/"+stage && r.Body["state"] == state
		})
	}
	for _, stage := range []string{"build", "publish"} {
		assert.Equal(t, 1, statuses("base", stage, "pending"), stage)
		assert.Equal(t, 1, statuses("base", stage, "success"), stage)
	}
	assert.Equal(t, 1, statuses("app", "bake", "success"))
	for _, r := range it.github.all() {
		assert.True(t, strings.HasPrefix(r.Body["target_url"].(string), "http://ui.test/namespaces/default/workflows/"),
			"statuses link to the run in the Web UI: %v", r.Body["target_url"])
	}
	assert.Equal(t, []string{"ops@example.com"}, mailsTo(t, "[kiln] base main: succeeded"))

	// Again: the same commit builds the same image, so nothing is pushed
	// and nothing is triggered.
	putsBefore := it.regLog.count(isManifestPut)
	again := mustRun(ctx, t, starter.ManualRun{Pipeline: "base", Ref: "main"})
	require.Len(t, again.Publish.Images, 1)
	assert.Equal(t, img.Digest, again.Publish.Images[0].Digest, "reproducible")
	assert.ElementsMatch(t, img.Tags, again.Publish.Images[0].Skipped)
	assert.Empty(t, again.Publish.Triggered)
	assert.Equal(t, putsBefore, it.regLog.count(isManifestPut), "an idempotent push puts no manifest")
}

// TestRegistryRefusalIsPermanent: a registry that refuses the
// credentials fails the publish stage at once, not after retries, naming the
// registry and never the password.
func TestRegistryRefusalIsPermanent(t *testing.T) {
	t.Setenv("KILN_PUBLISH_REG_PASS", "wrong")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	id, err := it.runs.Start(ctx, starter.ManualRun{Pipeline: "base", Ref: "main"})
	require.NoError(t, err)
	err = it.temporal.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RegistryRefused")
	assert.Contains(t, err.Error(), it.registry)
	assert.NotContains(t, err.Error(), "wrong")
}

func isManifestPut(r recorded) bool {
	return r.Method == http.MethodPut && strings.Contains(r.Path, "/manifests/")
}

func mustRun(ctx context.Context, t *testing.T, m starter.ManualRun) workflows.PipelineResult {
	t.Helper()
	id, err := it.runs.Start(ctx, m)
	require.NoError(t, err)
	var res workflows.PipelineResult
	require.NoError(t, it.temporal.Client.GetWorkflow(ctx, id, "").Get(ctx, &res), "run %s", id)
	require.NotNil(t, res.Publish, "run %s published nothing", id)
	return res
}

var regAuth = remote.WithAuth(&authn.Basic{Username: regUser, Password: regPass})

func digestOf(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(it.registry+"/"+ref, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Head(r, regAuth)
	require.NoError(t, err)
	return d.Digest.String()
}

// fileIn reads one file of an image's flattened filesystem.
func fileIn(t *testing.T, ref, path string) string {
	t.Helper()
	r, err := name.ParseReference(it.registry+"/"+ref, name.Insecure)
	require.NoError(t, err)
	return testkit.FileInImage(t, r, path, regAuth)
}

func object(t *testing.T, key string) []byte {
	t.Helper()
	c := s3.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(it.moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")},
		func(o *s3.Options) { o.UsePathStyle = true })
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err, "s3://%s/%s", bucket, key)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b
}

// mailsTo returns the recipients of the mail moto's SES "sent" with subject.
func mailsTo(t *testing.T, subject string) []string {
	t.Helper()
	for _, m := range motoserver.SentMail(t, it.moto) {
		if strings.HasPrefix(m.Subject, subject) {
			return m.To
		}
	}
	t.Fatalf("no mail with subject %q", subject)
	return nil
}

// TestReviewRunKeepsOneComment: a pull-request run of base is reported in
// one comment, created once and then edited in place as the stages move, and
// its image gets the review tags.
func TestReviewRunKeepsOneComment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	ev := event.Event{Kind: event.KindReview, Repo: "acme/app", Ref: "refs/pull/7/head", Branch: "feature",
		Commit: it.head, DeliveryID: "review-7", PullRequest: &event.PullRequest{Number: 7, Title: "$(touch /tmp/pwned)",
			SourceBranch: "feature", TargetBranch: "main", SourceCommit: it.head}}
	id, _, err := it.runs.StartRun(ctx, &config.Pipeline{Name: "base"}, ev)
	require.NoError(t, err)
	var res workflows.PipelineResult
	require.NoError(t, it.temporal.Client.GetWorkflow(ctx, id, "").Get(ctx, &res))
	require.NotNil(t, res.Publish)
	assert.Equal(t, []string{"pr-7", it.head[:7]}, res.Publish.Images[0].Tags)

	posts := it.github.count(func(r recorded) bool {
		return r.Method == http.MethodPost && r.Path == "/repos/acme/app/issues/7/comments"
	})
	patches := it.github.count(func(r recorded) bool {
		return r.Method == http.MethodPatch && strings.HasPrefix(r.Path, "/repos/acme/app/issues/comments/")
	})
	assert.Equal(t, 1, posts, "one comment per run")
	assert.GreaterOrEqual(t, patches, 4, "edited as build and publish start and end, and at the outcome")
	it.host.mu.Lock()
	defer it.host.mu.Unlock()
	require.Len(t, it.host.comments, 1)
	body := it.host.comments[0]["body"].(string)
	assert.Contains(t, body, "<!-- kiln:run:"+id+" -->")
	assert.Contains(t, body, "succeeded")
	assert.Contains(t, body, "http://ui.test/namespaces/default/workflows/")
}
