//go:build record

package workflows_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/workflows"
)

// The publish group's pipelines: base publishes an image, app is started by
// it.
const (
	recBasePipeline = "replay-base"
	recAppPipeline  = "replay-app"
)

// recordPublishScenarios records a run that builds, publishes an image to an
// in-process registry, reports each stage to a stub git host, mails its
// outcome through moto's SES, and starts the pipeline its image triggers.
func recordPublishScenarios(t *testing.T) (*recorder, map[string]string) {
	r := newPublishRecorder(t, false)
	runs := map[string]string{}
	runs["publish-triggered"] = r.start(recBasePipeline, "publish")
	r.wait(runs["publish-triggered"], nil)
	var res workflows.PipelineResult
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := r.c.GetWorkflow(ctx, runs["publish-triggered"], "").Get(ctx, &res); err != nil || len(res.Publish.Triggered) != 1 {
		t.Fatalf("publish-triggered: %v, triggered %v", err, res.Publish)
	}
	runs["image-triggered"] = res.Publish.Triggered[0]
	r.wait(runs["image-triggered"], nil)
	return r, runs
}

// recordArtifactStoreScenarios records the base run of the publish group
// on a worker with an artifact store.
func recordArtifactStoreScenarios(t *testing.T) (*recorder, map[string]string) {
	r := newPublishRecorder(t, true)
	id := r.start(recBasePipeline, "store")
	r.wait(id, nil)
	var res workflows.PipelineResult
	if err := r.c.GetWorkflow(t.Context(), id, "").Get(t.Context(), &res); err != nil || res.Build.ArtifactsManifest == "" {
		t.Fatalf("published-from-store: %v, manifest %q", err, res.Build.ArtifactsManifest)
	}
	return r, map[string]string{"published-from-store": id}
}

// newPublishRecorder is a recorder whose worker reaches a registry, a stub
// git host and moto's SES, with an artifact store when store is set.
func newPublishRecorder(t *testing.T, store bool) *recorder {
	moto := motoserver.Start(t)
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", moto.URL}, {"AWS_ACCESS_KEY_ID", "testing"}, {"AWS_SECRET_ACCESS_KEY", "testing"},
		{"AWS_REGION", "us-east-1"}, {"AWS_EC2_METADATA_DISABLED", "true"}, {"KILN_REPLAY_GH_TOKEN", "replay-token"},
	} {
		t.Setenv(kv[0], kv[1])
	}
	ses := sesv2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	if _, err := ses.CreateEmailIdentity(t.Context(), &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("kiln@example.com")}); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	}))
	t.Cleanup(host.Close)
	registryHost := strings.TrimPrefix(reg.URL, "http://")
	r := newRecorder(t, recFixture{
		files: fstest.MapFS{
			"buildspec.yml": {Data: []byte(recPublishBuildspec)},
		},
		config:    func(cloneURL string) *config.Config { return recPublishConfig(cloneURL, registryHost, host.URL+"/") },
		artifacts: store,
	})
	return r
}

const recPublishBuildspec = `version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist && printf '%s\n' "$KILN_PIPELINE" "$KILN_TRIGGER_IMAGE_DIGEST" > dist/built.txt
artifacts:
  files: ["dist/**"]
`

func recPublishConfig(cloneURL, registryHost, hostURL string) *config.Config {
	build := &config.BuildStage{Buildspec: config.BuildspecSource{Path: "buildspec.yml"}, Timeout: config.Duration(5 * time.Minute)}
	image := func(name string) *config.PublishStage {
		return &config.PublishStage{Images: []config.ImagePublish{{Name: registryHost + "/" + name, Insecure: true,
			Files: []config.ImageFile{{From: "dist/**", To: "/opt"}}}}}
	}
	return &config.Config{
		File: "kiln.yaml (replay recorder, publish)",
		Repos: []config.Repo{{Name: recRepo, CloneURL: cloneURL,
			Report: &config.Report{APIURL: hostURL, Token: config.SecretRef{Env: "KILN_REPLAY_GH_TOKEN"}}}},
		Pipelines: []config.Pipeline{
			{Name: recBasePipeline, Repo: recRepo, Triggers: config.Triggers{Branch: []string{"main"}},
				Stages: config.Stages{Build: build, Publish: image("replay/base")},
				Notify: &config.Notify{Email: &config.EmailNotify{From: "kiln@example.com", To: []string{"ops@example.com"}}}},
			{Name: recAppPipeline, Repo: recRepo,
				Triggers: config.Triggers{Image: []config.ImageTrigger{{Name: registryHost + "/replay/base"}}},
				Stages:   config.Stages{Build: build, Publish: image("replay/app")}},
		},
	}
}
