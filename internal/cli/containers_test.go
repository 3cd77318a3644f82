package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/internal/config"
)

// TestInsecureRegistries: kiln's buildkitd reaches over plain HTTP only the
// registries config marks insecure and those on loopback.
func TestInsecureRegistries(t *testing.T) {
	cfg := &config.Config{Pipelines: []config.Pipeline{
		{Stages: config.Stages{
			Build: &config.BuildStage{Environment: &config.BuildEnvironment{Image: "127.0.0.1:5000/ci/go:1"}},
			Publish: &config.PublishStage{Images: []config.ImagePublish{
				{Name: "registry.internal:5000/acme/app", Insecure: true},
				{Name: "registry.example.com/acme/web", Base: "localhost:5001/base:1"},
				{Name: "public.ecr.aws/acme/site"},
			}},
		}},
		{Stages: config.Stages{Build: &config.BuildStage{Environment: &config.BuildEnvironment{Image: "ghcr.io/acme/ci:1"}}}},
	}}
	assert.Equal(t, []string{"127.0.0.1:5000", "127.0.0.1:7777", "localhost:5001", "registry.internal:5000"},
		insecureRegistries(cfg, "127.0.0.1:7777"))
}
