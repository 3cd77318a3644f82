package activities

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// TestPlanPinsBuildImage: the plan pins a build image's tag to its digest
// with the credentials environment.auth names, and records only the pinned
// reference, never the password; an image the registry does not have and
// refused credentials fail the plan for good.
func TestPlanPinsBuildImage(t *testing.T) {
	const user, password = "ci", "pull-s3cret-9c1d"
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(host + "/ci/go:1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})))
	digest, err := img.Digest()
	require.NoError(t, err)

	t.Setenv("KILN_TEST_PULL_PASSWORD", password)
	a, build := planRig(t, host+"/ci/go:1")
	build.Environment.Auth = &config.RegistryAuth{Username: user, Password: config.SecretRef{Env: "KILN_TEST_PULL_PASSWORD"}}
	plan, err := a.Plan(context.Background(), PlanInput{Pipeline: "ci", Event: event.Event{Kind: event.KindManual, Ref: "refs/heads/main"}})
	require.NoError(t, err)
	assert.Equal(t, host+"/ci/go@"+digest.String(), plan.BuildImage)
	inHistory, err := json.Marshal(plan)
	require.NoError(t, err)
	assert.NotContains(t, string(inHistory), password)

	build.Environment.Image = host + "/ci/go:2"
	_, err = a.Plan(context.Background(), PlanInput{Pipeline: "ci", Event: event.Event{Kind: event.KindManual, Ref: "refs/heads/main"}})
	appErr := requirePermanent(t, err, ErrInvalidImage)
	assert.Contains(t, appErr.Message(), "stages.build.environment.image "+host+"/ci/go:2")

	build.Environment.Image = host + "/ci/go:1"
	t.Setenv("KILN_TEST_PULL_PASSWORD", "wrong-"+password)
	_, err = a.Plan(context.Background(), PlanInput{Pipeline: "ci", Event: event.Event{Kind: event.KindManual, Ref: "refs/heads/main"}})
	appErr = requirePermanent(t, err, ErrRegistryRefused)
	assert.NotContains(t, appErr.Message(), password)
}

// TestPlanNeedsContainers: a pipeline that builds in an image, or publishes
// a Dockerfile image, fails its
// plan, for good, on a worker without a container runtime, saying which
// pipeline, what needs containers, and why the worker has none.
func TestPlanNeedsContainers(t *testing.T) {
	a, _ := planRig(t, "registry.example.com/ci/go:1")
	a.Containers, a.NoContainers = nil, errors.New("buildkitd needs root and runc")
	_, err := a.Plan(context.Background(), PlanInput{Pipeline: "ci", Event: event.Event{Kind: event.KindManual, Ref: "refs/heads/main"}})
	appErr := requirePermanent(t, err, ErrNoContainers)
	for _, want := range []string{`pipeline "ci"`, "stages.build.environment.image", "registry.example.com/ci/go:1", "buildkitd needs root and runc"} {
		assert.Contains(t, appErr.Message(), want)
	}

	// A Dockerfile image needs one too, though the build runs on the worker.
	a.Config.Pipelines[0].Stages.Build.Environment = nil
	a.Config.Pipelines[0].Stages.Publish = &config.PublishStage{Images: []config.ImagePublish{
		{Name: "registry.example.com/acme/web", Dockerfile: "Dockerfile"}}}
	_, err = a.Plan(context.Background(), PlanInput{Pipeline: "ci", Event: event.Event{Kind: event.KindManual, Ref: "refs/heads/main"}})
	appErr = requirePermanent(t, err, ErrNoContainers)
	assert.Contains(t, appErr.Message(), "stages.publish.images[0].dockerfile")
}

// planRig is a repository on main and a pipeline "ci" building it in
// image, on a worker with a container runtime that the plan never calls.
func planRig(t *testing.T, image string) (*Activities, *config.BuildStage) {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo")
	_, err := gitx.InitRepo(context.Background(), repo, fstest.MapFS{"README.md": {Data: []byte("# ci\n")}}, "first")
	require.NoError(t, err)
	build := &config.BuildStage{Buildspec: config.BuildspecSource{Path: "buildspec.yml"},
		Environment: &config.BuildEnvironment{Image: image}}
	cfg := &config.Config{File: "kiln.yaml",
		Repos:     []config.Repo{{Name: "acme/ci", CloneURL: repo}},
		Pipelines: []config.Pipeline{{Name: "ci", Repo: "acme/ci", Stages: config.Stages{Build: build}}}}
	cfg.Defaults()
	return &Activities{Config: cfg, DataDir: t.TempDir(), Log: zerolog.Nop(), Containers: &buildkit.Client{}}, build
}
