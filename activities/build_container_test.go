package activities

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/event"
)

// TestContainerCaches: cache.paths become cache mounts per pipeline and
// directory: relative paths under the source directory, absolute ones as
// they are, CodeBuild's /* and /**/* endings dropped; paths that would
// hide the checkout, globs and repeats are not mounted.
func TestContainerCaches(t *testing.T) {
	var log strings.Builder
	got := containerCaches("web", []string{
		"node_modules/**/*", "/root/.m2/**/*", ".cache/*", "/var/cache/apt", "node_modules/*",
		"build/*.o", ".", "/codebuild", "/",
	}, &log)
	assert.Equal(t, []buildkit.Cache{
		{ID: "kiln/web/codebuild/output/src/node_modules", Path: "/codebuild/output/src/node_modules"},
		{ID: "kiln/web/root/.m2", Path: "/root/.m2"},
		{ID: "kiln/web/codebuild/output/src/.cache", Path: "/codebuild/output/src/.cache"},
		{ID: "kiln/web/var/cache/apt", Path: "/var/cache/apt"},
	}, got)
	review := containerCaches(cacheScope(BuildInput{Pipeline: "web", Event: event.Event{Kind: event.KindReview}}), []string{"/root/.m2"}, &log)
	assert.Equal(t, []buildkit.Cache{{ID: "kiln/web/review/root/.m2", Path: "/root/.m2"}}, review,
		"pull requests keep caches apart from the branch runs'")
	assert.Equal(t, "web", cacheScope(BuildInput{Pipeline: "web", Event: event.Event{Kind: event.KindBranch}}))
	for _, want := range []string{
		`cache path "build/*.o" is not a directory`,
		`cache path "." would hide the checkout`,
		`cache path "/codebuild" would hide the checkout`,
		`cache path "/" would hide the checkout`,
	} {
		assert.Contains(t, log.String(), want)
	}
}

// TestContainerEnv: a build in an image starts from the image's
// environment, with the host build's PATH, HOME, TMPDIR and LANG where
// the image has none, and never the worker's.
func TestContainerEnv(t *testing.T) {
	t.Setenv("KILN_TEST_WORKER_ONLY", "x")
	assert.Equal(t, []string{"PATH=/opt/go/bin:/bin", "HOME=/home/ci", "LANG=de_DE.UTF-8", "TMPDIR=/scratch"},
		containerEnv([]string{"PATH=/opt/go/bin:/bin", "HOME=/home/ci", "LANG=de_DE.UTF-8", "TMPDIR=/scratch"}))
	assert.Equal(t, []string{"GOFLAGS=-mod=mod", "PATH=" + defaultPath, "HOME=/root", "TMPDIR=/tmp", "LANG=C.UTF-8"},
		containerEnv([]string{"GOFLAGS=-mod=mod"}))
}
