package config

import (
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/secrets"
)

// reservedPrefixes start the names of the variables kiln sets itself, which
// override a declared secret: a secret under such a name would never reach
// the build.
var reservedPrefixes = []string{"KILN_", "FLOW_", "CODEBUILD_"}

// buildAndTest checks what the schema cannot of the build and test stages:
// the build image's reference, the declared secrets' references and an
// inline buildspec, so a typo fails at load and not in a run.
func (c *checker) buildAndTest(i int, s Stages) {
	if b := s.Build; b != nil {
		base := []any{"pipelines", i, "stages", "build"}
		if env := b.Environment; env != nil {
			c.image(c.at(base, "environment", "image"), env)
		}
		c.secrets(slices.Concat(base, []any{"secrets"}), b.Secrets)
		if b.Buildspec.Inline != "" {
			if _, err := buildspec.Parse("the inline buildspec", []byte(b.Buildspec.Inline)); err != nil {
				c.p.add(c.at(base, "buildspec"), "%v", err)
			}
		}
	}
	if t := s.Test; t != nil {
		c.secrets([]any{"pipelines", i, "stages", "test", "secrets"}, t.Secrets)
	}
}

func (c *checker) image(at place, env *BuildEnvironment) {
	if _, err := name.ParseReference(env.Image); err != nil {
		c.p.add(at, "%q is not an image reference: %v", env.Image, err)
	}
}

// secrets checks each declared secret's name and reference, in name order.
func (c *checker) secrets(base []any, declared map[string]DeclaredSecret) {
	for _, n := range slices.Sorted(maps.Keys(declared)) {
		d := declared[n]
		for _, p := range reservedPrefixes {
			if strings.HasPrefix(n, p) {
				c.p.add(c.at(base, n), "%s* names are kiln's own variables, which would hide the secret; choose another name", p)
			}
		}
		switch {
		case d.SecretsManager != "":
			if _, err := secrets.ParseSecretsManagerRef(d.SecretsManager); err != nil {
				c.p.add(c.at(base, n, "secrets_manager"), "%q: %s", d.SecretsManager, refProblem(err))
			}
		case d.ParameterStore != "":
			if err := secrets.CheckParameterName(d.ParameterStore); err != nil {
				c.p.add(c.at(base, n, "parameter_store"), "%q: %s", d.ParameterStore, refProblem(err))
			}
		}
	}
}

// refProblem is a reference error's message without the store, which the
// field already names.
func refProblem(err error) string {
	if se, ok := err.(*secrets.Error); ok {
		return se.Msg
	}
	return err.Error()
}
