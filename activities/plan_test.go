package activities

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/test/githttp"
)

// TestCheckoutPrivateRepo: a plan whose repository has clone_auth checks
// out over HTTP with the token read on the worker; the plan (which workflow
// history records) names only where the token is; an unreadable token is a
// permanent error naming clone_auth.password.
func TestCheckoutPrivateRepo(t *testing.T) {
	const token = "ghs_cl0neT0ken"
	root := t.TempDir()
	head, err := gitx.InitRepo(context.Background(), filepath.Join(root, "r.git"),
		fstest.MapFS{"buildspec.yml": {Data: []byte("version: 0.2\n")}}, "initial")
	require.NoError(t, err)
	base := githttp.Serve(t, root, "x-access-token", token)

	t.Setenv("KILN_TEST_CLONE_TOKEN", token)
	plan := Plan{CloneURL: base + "/r.git", Commit: head,
		CloneAuth: &config.CloneAuth{Password: config.SecretRef{Env: "KILN_TEST_CLONE_TOKEN"}}}
	dir := t.TempDir()
	var log strings.Builder
	require.NoError(t, checkout(context.Background(), plan, dir, &log))
	_, err = os.Stat(filepath.Join(dir, "buildspec.yml"))
	require.NoError(t, err, "the commit is checked out")
	assert.NotContains(t, log.String(), token)

	inHistory, err := json.Marshal(plan)
	require.NoError(t, err)
	assert.NotContains(t, string(inHistory), token, "the plan holds the token")
	assert.Contains(t, string(inHistory), `"password":{"env":"KILN_TEST_CLONE_TOKEN"}`)

	t.Setenv("KILN_TEST_CLONE_TOKEN", "")
	err = checkout(context.Background(), plan, t.TempDir(), &log)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	assert.Equal(t, ErrInvalidRunRequest, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, appErr.Message(), "clone_auth.password of "+base+"/r.git")

	plan.CloneAuth = nil // a private repository without credentials
	err = checkout(context.Background(), plan, t.TempDir(), &log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checkout")
}
