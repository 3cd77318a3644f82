package activities

import (
	"context"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/gitx"
)

func TestForkCloneURL(t *testing.T) {
	for _, tt := range []struct{ base, want string }{
		{"https://bitbucket.org/acme/app.git", "https://bitbucket.org/outsider/app-fork.git"},
		{"https://bitbucket.org/acme/app", "https://bitbucket.org/outsider/app-fork"},
		{"https://bitbucket.org/ACME/App/", "https://bitbucket.org/outsider/app-fork"},
		{"git@bitbucket.org:acme/app.git", "git@bitbucket.org:outsider/app-fork.git"},
		{"/srv/git/acme/app", "/srv/git/outsider/app-fork"},
	} {
		got, err := forkCloneURL(tt.base, "acme/app", "outsider/app-fork")
		require.NoError(t, err, tt.base)
		assert.Equal(t, tt.want, got, tt.base)
	}
	// The fork's name comes from a webhook: only a plain owner/name.
	for _, fork := range []string{"../../etc", "evil.example.com/x/y", "a/b?c", "a/..", "x"} {
		_, err := forkCloneURL("https://bitbucket.org/acme/app.git", "acme/app", fork)
		requirePermanent(t, err, ErrInvalidRunRequest)
	}
	// A clone URL that does not end in the base's name gives no place for the fork.
	_, err := forkCloneURL("https://git.example.com/mirror.git", "acme/app", "outsider/app")
	appErr := requirePermanent(t, err, ErrInvalidRunRequest)
	assert.Contains(t, appErr.Message(), "does not end in acme/app")
}

// TestPlanForkPullRequest: a Bitbucket pull request from a fork is planned
// from the fork: its abbreviated commit resolves at the head of the fork's
// branch, the run clones the fork, and it is untrusted.
func TestPlanForkPullRequest(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	_, err := gitx.InitRepo(ctx, filepath.Join(root, "acme", "app"), fstest.MapFS{"README.md": {Data: []byte("base\n")}}, "base")
	require.NoError(t, err)
	head, err := gitx.InitRepo(ctx, filepath.Join(root, "outsider", "app"), fstest.MapFS{"README.md": {Data: []byte("fork\n")}}, "fork")
	require.NoError(t, err)
	a := &Activities{Log: zerolog.Nop(), Config: &config.Config{File: "kiln.yaml",
		Repos: []config.Repo{{Name: "acme/app", CloneURL: filepath.Join(root, "acme", "app")}},
		Pipelines: []config.Pipeline{{Name: "ci", Repo: "acme/app", Triggers: config.Triggers{Review: &config.ReviewTrigger{}},
			Stages: config.Stages{Build: &config.BuildStage{Buildspec: config.BuildspecSource{Path: "buildspec.yml"}}}}}}}
	ev := event.Event{Kind: event.KindReview, Host: event.HostBitbucket, Repo: "acme/app", Ref: "refs/heads/main", Branch: "main",
		Commit: head[:12], DeliveryID: "commit-" + head[:12],
		PullRequest: &event.PullRequest{Number: 3, SourceBranch: "main", TargetBranch: "main", SourceCommit: head[:12],
			Fork: true, SourceRepo: "outsider/app"}}
	plan, err := a.Plan(ctx, PlanInput{Pipeline: "ci", Event: ev})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "outsider", "app"), plan.CloneURL, "the run clones the fork")
	assert.Equal(t, head, plan.Commit, "the fork's commit, in full")
	assert.NotEmpty(t, plan.Untrusted, "a fork's change waits for approval")
}
