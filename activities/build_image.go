package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/oci"
)

// checkContainers fails the plan of a pipeline that needs containers (it
// builds in an image, or publishes a Dockerfile image) when this worker
// has no container runtime: better at once, with the reason, than a stage
// that cannot start.
func (a *Activities) checkContainers(p *config.Pipeline) error {
	if a.Containers != nil {
		return nil
	}
	var needs string
	if b := p.Stages.Build; b != nil && b.Environment != nil {
		needs = "builds in an image (stages.build.environment.image: " + b.Environment.Image + ")"
	} else if pub := p.Stages.Publish; pub != nil {
		for i, img := range pub.Images {
			if img.Dockerfile != "" {
				needs = fmt.Sprintf("builds %s from a Dockerfile (stages.publish.images[%d].dockerfile)", img.Name, i)
				break
			}
		}
	}
	if needs == "" {
		return nil
	}
	why := a.NoContainers
	if why == nil {
		why = errors.New("it was started without one")
	}
	return permanent(ErrNoContainers, "pipeline %q %s, which needs a container runtime, and this worker has none: %v", p.Name, needs, why)
}

// pinBuildImage resolves the build image to its digest, so every attempt
// of the run builds in the same image and the run's history says which.
// A missing image or refused credentials is permanent.
func (a *Activities) pinBuildImage(ctx context.Context, b *config.BuildStage) (string, error) {
	if b == nil || b.Environment == nil {
		return "", nil
	}
	image := b.Environment.Image
	p, err := a.imagePuller(ctx, b.Environment)
	if err != nil {
		return "", err
	}
	pinned, err := p.Pin(ctx, image)
	if err != nil {
		return "", classifyImage(err, "stages.build.environment.image "+image)
	}
	return pinned, nil
}

// imagePuller carries the build image's registry credentials, read on the
// worker as an image push reads them: from environment.auth, or from
// ecr:GetAuthorizationToken for ECR.
func (a *Activities) imagePuller(ctx context.Context, env *config.BuildEnvironment) (*oci.Pusher, error) {
	r, err := name.ParseReference(env.Image)
	if err != nil {
		return nil, permanent(ErrInvalidImage, "stages.build.environment.image %q: %v", env.Image, err)
	}
	return a.pusher(ctx, config.ImagePublish{Name: r.Context().Name(), Auth: env.Auth, Insecure: env.Insecure})
}

// containerAuth is a pusher's registry credentials as BuildKit takes them,
// for pulling a build image or a Dockerfile's bases.
func containerAuth(p *oci.Pusher) map[string]buildkit.Auth {
	out := make(map[string]buildkit.Auth, len(p.Auth))
	for host, a := range p.Auth {
		out[host] = buildkit.Auth{Username: a.Username, Password: a.Password, Token: a.Token}
	}
	return out
}

// classifyContainer makes BuildKit's refusals and missing images permanent,
// as for image pushes; other failures (the daemon, the network) are
// retried.
func classifyContainer(err error, image string) error {
	switch {
	case errors.Is(err, buildkit.ErrUnauthorized):
		return permanent(ErrRegistryRefused, "build image %s: %v", image, err)
	case errors.Is(err, buildkit.ErrImageNotFound):
		return permanent(ErrInvalidImage, "build image %s: %v", image, err)
	}
	return fmt.Errorf("build image %s: %w", image, err)
}
