package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildSeesNoWorkerSecrets runs a host build on a worker whose
// environment holds an AWS secret key, a registry password and a GitHub
// token. The build's environment is kiln's variables, the pipeline's env,
// the secret it declares (scrubbed from the log) and a minimal base, and
// none of the worker's own. On a root worker the build also runs as a user
// of its own, with a HOME in its workspace: it cannot read the worker's
// process environment, PID 1's, a credentials file of the worker's, or
// the data dir.
func TestBuildSeesNoWorkerSecrets(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := it.runs.StartManual(ctx, "isolation", "main", "")
	require.NoError(t, err)
	res := mustSucceed(t, id)

	env, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", "env.txt"))
	require.NoError(t, err)
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(env)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	for name, secret := range workerSecrets {
		assert.NotContains(t, vars, name, "the worker's %s reached the build", name)
		assert.NotContains(t, string(env), secret, "the value of the worker's %s reached the build", name)
	}
	assert.NotContains(t, vars, secretEnv, "the worker's webhook secret reached the build")
	assert.Equal(t, "declared-value", vars["DECLARED"], "the pipeline's env reaches the build")
	assert.Equal(t, declaredSecret, vars["DECLARED_SECRET"], "a declared secret reaches the build")
	assert.NotContains(t, vars, declaredSecretEnv, "a declared secret reaches the build under its own name only")
	log, err := os.ReadFile(res.Build.LogPath)
	require.NoError(t, err)
	assert.Contains(t, string(log), "the declared secret is <sensitive>")
	assert.NotContains(t, string(log), declaredSecret)
	assert.Equal(t, "isolation", vars["KILN_PIPELINE"])
	assert.Equal(t, os.Getenv("PATH"), vars["PATH"], "PATH is the one value taken from the worker")
	assert.NotEqual(t, os.Getenv("HOME"), vars["HOME"])
	if os.Geteuid() == 0 {
		assertBuildUser(t, res.Build.ArtifactsDir, vars)
	} else {
		assert.Equal(t, filepath.Join(it.dataDir, "home", "isolation"), vars["HOME"])
		assert.True(t, strings.HasPrefix(vars["TMPDIR"], filepath.Join(it.dataDir, "work")), "TMPDIR is the attempt's: %s", vars["TMPDIR"])
		t.Log("not root: builds run as the worker's user, which can read its /proc environ and files; the rest is checked as root")
	}

	for k := range vars {
		switch {
		case strings.HasPrefix(k, "KILN_"), strings.HasPrefix(k, "FLOW_"), strings.HasPrefix(k, "CODEBUILD_"):
		case k == "PATH", k == "HOME", k == "TMPDIR", k == "LANG", k == "CI", k == "KILN", k == "DECLARED", k == "DECLARED_SECRET":
		case k == "PWD", k == "SHLVL", k == "OLDPWD", k == "_": // the shell's own
		default:
			t.Errorf("the build sees %s, which neither kiln nor the pipeline set", k)
		}
	}
}

// assertBuildUser checks what a build on a root worker could read beyond
// its environment: it ran as a user other than root, and its attempts to
// read the worker's /proc/PID/environ, PID 1's, the worker's credentials
// file and the data dir were all refused.
func assertBuildUser(t *testing.T, out string, vars map[string]string) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, "out", name))
		require.NoError(t, err)
		return string(b)
	}
	uid := strings.TrimSpace(read("uid.txt"))
	assert.NotEqual(t, "0", uid, "the build ran as root")
	assert.NotEqual(t, strconv.Itoa(os.Getuid()), uid, "the build ran as the worker's user")
	assert.True(t, strings.HasPrefix(vars["HOME"], vars["TMPDIR"][:strings.LastIndex(vars["TMPDIR"], "/")]),
		"HOME %s is not in the attempt's workspace (TMPDIR %s)", vars["HOME"], vars["TMPDIR"])
	for _, f := range []string{"worker-environ.txt", "init-environ.txt"} {
		got := read(f)
		assert.Contains(t, got, "Permission denied", "%s: the build read a root process's environment", f)
		for name, secret := range workerSecrets {
			assert.NotContains(t, got, secret, "%s: the worker's %s", f, name)
		}
	}
	assert.Contains(t, read("credentials.txt"), "Permission denied")
	assert.NotContains(t, read("credentials.txt"), workerCredential, "the build read the worker's credentials file")
	assert.Contains(t, read("data.txt"), "Permission denied", "the build listed the data dir")
}
