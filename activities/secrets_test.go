package activities

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
)

// TestResolveDeclaredSecrets: env and file secrets are read on the worker,
// in name order; a missing one is a permanent SecretUnavailable naming the
// variable and where it is read; a malformed buildspec reference fails the
// same way before any AWS call. Messages never hold a value.
func TestResolveDeclaredSecrets(t *testing.T) {
	const token, key = "tok-5e1f2a", "key-77ab0c"
	file := filepath.Join(t.TempDir(), "deploy")
	require.NoError(t, os.WriteFile(file, []byte(key+"\n"), 0o600))
	t.Setenv("KILN_TEST_API_TOKEN", token)
	declared := map[string]config.DeclaredSecret{"DEPLOY_KEY": {File: file}, "API_TOKEN": {Env: "KILN_TEST_API_TOKEN"}}
	got, err := resolveSecrets(context.Background(), "stages.build.secrets", declared, buildspec.Env{})
	require.NoError(t, err)
	assert.Equal(t, []buildspec.Secret{{Name: "API_TOKEN", Value: token}, {Name: "DEPLOY_KEY", Value: key}}, got)

	declared["MISSING"] = config.DeclaredSecret{Env: "KILN_TEST_NOT_SET"}
	_, err = resolveSecrets(context.Background(), "stages.build.secrets", declared, buildspec.Env{})
	appErr := requirePermanent(t, err, ErrSecretUnavailable)
	assert.Contains(t, appErr.Message(), "stages.build.secrets.MISSING")
	assert.Contains(t, appErr.Message(), "KILN_TEST_NOT_SET")

	// A buildspec may read only what its stage declares: not any secret
	// the worker's AWS identity can.
	delete(declared, "MISSING")
	_, err = resolveSecrets(context.Background(), "stages.build.secrets", declared,
		buildspec.Env{SecretsManager: []buildspec.SecretVar{{Name: "DB", Ref: "prod/other-team-db:password"}}})
	appErr = requirePermanent(t, err, ErrSecretUnavailable)
	assert.Contains(t, appErr.Message(), `buildspec env.secrets-manager.DB reads secrets-manager "prod/other-team-db:password", which stages.build.secrets does not declare`)
	for _, v := range []string{token, key} {
		assert.NotContains(t, appErr.Message(), v)
	}
}
