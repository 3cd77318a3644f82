package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// TestEveryRefGitAllowsRuns pushes the class of refs the intake used to
// fail: names in other scripts (Temporal refused them in a workflow ID),
// names long enough to overflow a file name, and an annotated tag, whose
// push names the tag object. Each run must complete on the commit, with the
// exact ref name in KilnRef and in the build's KILN_REF_NAME.
func TestEveryRefGitAllowsRuns(t *testing.T) {
	t.Parallel()
	dir := repoDir("refs")
	commit := git(t, dir, "rev-parse", "main")
	git(t, dir, "-c", "user.name=it", "-c", "user.email=it@example.com", "tag", "-a", "v2.0-ü", "-m", "annotated")
	tagObject := git(t, dir, "rev-parse", "v2.0-ü")
	require.NotEqual(t, commit, tagObject)
	long := "release/" + strings.Repeat("x", 230)

	cases := []struct {
		name, ref, after, refName string
	}{
		{"latin", "refs/heads/release/café", commit, "release/café"},
		{"cjk and emoji", "refs/heads/release/功能-🚀", commit, "release/功能-🚀"},
		{"238 characters", "refs/heads/" + long, commit, long},
		{"1,000 characters", "refs/heads/" + strings.Repeat("long/", 200), commit, strings.Repeat("long/", 200)},
		{"annotated tag", "refs/tags/v2.0-ü", tagObject, "v2.0-ü"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			payload := map[string]any{"ref": c.ref, "before": strings.Repeat("0", 40), "after": c.after,
				"repository": repoJSON("refs"), "sender": map[string]any{"login": "it"}}
			id := startedID(t, "push", testkit.NewDeliveryID(), payload)
			res := mustSucceed(t, id)
			assert.Equal(t, commit, res.Commit, "the run's commit is the commit, not a tag object")
			attrs := searchAttrsOf(describe(t, id))
			assert.Equal(t, commit, attrs["KilnCommit"])
			label := c.refName
			if strings.HasPrefix(c.ref, "refs/tags/") {
				label = "tag-" + c.refName
			}
			assert.Equal(t, label, attrs["KilnRef"], "KilnRef carries the exact name")
			assert.Contains(t, id, workflows.IDRef(label))
			require.NotNil(t, res.Build)
			ref, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", "ref.txt"))
			require.NoError(t, err)
			assert.Equal(t, label, string(ref), "KILN_REF_NAME is exact")
			head, err := os.ReadFile(filepath.Join(res.Build.ArtifactsDir, "out", "head.txt"))
			require.NoError(t, err)
			assert.Equal(t, commit, strings.TrimSpace(string(head)))
		})
	}
}
