package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/junit"
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

	delete(declared, "MISSING")
	_, err = resolveSecrets(context.Background(), "stages.build.secrets", declared,
		buildspec.Env{SecretsManager: []buildspec.SecretVar{{Name: "DB", Ref: "prod/db:a:b:c:d"}}})
	appErr = requirePermanent(t, err, ErrSecretUnavailable)
	assert.Contains(t, appErr.Message(), `buildspec env.secrets-manager.DB: secrets-manager "prod/db:a:b:c:d"`)
	for _, v := range []string{token, key} {
		assert.NotContains(t, appErr.Message(), v)
	}
}

// TestScrubReports: a secret a test printed into its failure message does
// not reach the run's history through the report.
func TestScrubReports(t *testing.T) {
	reports := []buildspec.ReportResult{{Name: "unit", Error: "reports/x.xml: tok-5e1f2a",
		Summary: junit.Summary{Failures: []junit.Case{{Name: "TestLogin", Message: "login with tok-5e1f2a refused"}}}}}
	got := scrubReports(reports, []buildspec.Secret{{Name: "API_TOKEN", Value: "tok-5e1f2a"}})
	assert.Equal(t, "login with <sensitive> refused", got[0].Summary.Failures[0].Message)
	assert.False(t, strings.Contains(got[0].Error, "tok-5e1f2a"))
	assert.Equal(t, "TestLogin", got[0].Summary.Failures[0].Name)
}
