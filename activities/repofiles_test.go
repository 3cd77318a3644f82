package activities

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRepoPathsStayInTheCheckout: a repository that commits symlinks out of
// itself gets neither a worker file read (a buildspec or Dockerfile linked
// to /proc/self/environ would have its text echoed by a parser error into
// the run's history) nor a worker directory as a build context.
func TestRepoPathsStayInTheCheckout(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "credentials"), []byte("aws_secret_access_key=x\n"), 0o600))
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "app"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "app", "Dockerfile"), []byte("FROM scratch\n"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(outside, "credentials"), filepath.Join(src, "buildspec.yml")))
	require.NoError(t, os.Symlink(outside, filepath.Join(src, "ctx")))
	require.NoError(t, os.Symlink("app", filepath.Join(src, "inner")))

	_, err := readInRepo(src, "buildspec.yml")
	assert.True(t, errors.Is(err, errLeavesRepo), "a buildspec linked out of the checkout: %v", err)
	b, err := readInRepo(src, "app/Dockerfile")
	assert.NoError(t, err)
	assert.Equal(t, "FROM scratch\n", string(b))

	_, err = dirInRepo(src, "ctx")
	assert.True(t, errors.Is(err, errLeavesRepo), "a context linked out of the checkout: %v", err)
	dir, err := dirInRepo(src, "inner")
	assert.NoError(t, err, "a link inside the checkout is fine")
	real, _ := filepath.EvalSymlinks(filepath.Join(src, "app"))
	assert.Equal(t, real, dir)

	_, err = loadBuildspec(src, config.BuildspecSource{Path: "buildspec.yml"})
	requirePermanent(t, err, ErrInvalidBuildspec)
	assert.NotContains(t, err.Error(), "aws_secret_access_key")
}
