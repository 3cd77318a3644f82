package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShellMetacharactersStayData pushes branches whose names are shell
// command substitutions, and a pull request whose title is one, from a real
// repository through the webhook. Git accepts these names and GitHub sends
// them verbatim; kiln must hand them to the build as environment values only.
// The build writes FLOW_BRANCH and KILN_PR_TITLE to artifacts: the exact bytes
// must arrive, and none of the files the names try to create may exist.
func TestShellMetacharactersStayData(t *testing.T) {
	t.Parallel()
	// The trap directory sits outside every workspace, so an injected touch
	// would leave its file here whichever directory it ran in.
	trap, err := os.MkdirTemp("", "kiln-pwned-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(trap) })
	branches := []string{
		"$(touch${IFS}" + trap + "/pwned-1)",
		"a;touch${IFS}" + trap + "/pwned-2",
		"`touch${IFS}" + trap + "/pwned-3`",
		"x|touch${IFS}" + trap + "/pwned-4&&y",
	}
	dir := repoDir("inject")
	base := git(t, dir, "rev-parse", "main")
	type run struct{ branch, id string }
	var runs []run
	for i, b := range branches {
		out, err := exec.Command("git", "check-ref-format", "--branch", b).CombinedOutput()
		require.NoError(t, err, "git refuses branch %q: %s; pick a name git accepts", b, out)
		sha := commitOn(t, dir, b, "file.txt", b)
		require.Equal(t, sha, git(t, dir, "rev-parse", "refs/heads/"+b), "branch %d exists in the repository", i)
		id := startedID(t, "push", testkit.NewDeliveryID(), pushPayload("inject", b, base, sha))
		require.Equal(t, "inject/"+b+"/", id[:len("inject/"+b+"/")], "the branch is part of the run ID")
		runs = append(runs, run{b, id})
	}

	title := `Fix $(touch${IFS}` + trap + `/pwned-title) "quoted" 'single' ` + "`id`" + ` ; | & \ $HOME`
	head := "title-test"
	sha := commitOn(t, dir, head, "title.txt", "title\n")
	titleID := startedID(t, "pull_request", testkit.NewDeliveryID(), prPayload("inject", "opened", 11, title, head, sha, base))

	for _, r := range runs {
		res := mustSucceed(t, r.id)
		got, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", "flow-branch.txt"))
		require.NoError(t, err)
		assert.Equal(t, r.branch+"\n", string(got), "FLOW_BRANCH of %s", r.id)
	}
	res := mustSucceed(t, titleID)
	got, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", "pr-title.txt"))
	require.NoError(t, err)
	assert.Equal(t, title+"\n", string(got), "KILN_PR_TITLE")

	entries, err := os.ReadDir(trap)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "files created by injected commands in %s: %s", trap, strings.Join(names, ", "))
}
