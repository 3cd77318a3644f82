package codecommit

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/event"
)

// normalizeEdited parses a fixture after edit and normalizes it.
func normalizeEdited(t *testing.T, file string, edit func(d map[string]any)) (event.Event, string, error) {
	t.Helper()
	env, err := ParseEnvelope(editEvent(t, file, func(ev map[string]any) { edit(detailOf(ev)) }))
	require.NoError(t, err)
	return Normalize(env)
}

// TestNormalizeIgnores checks each event that starts nothing says why, and
// still names its repository and delivery.
func TestNormalizeIgnores(t *testing.T) {
	tests := []struct {
		name, file string
		edit       func(d map[string]any)
		reason     string
	}{
		{"tag deleted", "tag_created.json", func(d map[string]any) { d["event"] = "referenceDeleted" },
			"tag v1.2.0 deleted"},
		{"unreferenced merge commit", "branch_updated.json", func(d map[string]any) { d["event"] = "unreferencedMergeCommitCreated" },
			`repository event "unreferencedMergeCommitCreated" starts nothing`},
		{"reference of another type", "branch_updated.json", func(d map[string]any) { d["referenceType"] = "note" },
			`referenceUpdated of a "note" reference starts nothing: not a branch or tag`},
		{"merge status updated", "pull_request_created.json", func(d map[string]any) { d["event"] = "pullRequestMergeStatusUpdated" },
			`pull request event "pullRequestMergeStatusUpdated" starts nothing`},
		{"approval state changed", "pull_request_created.json", func(d map[string]any) { d["event"] = "pullRequestApprovalStateChanged" },
			`pull request event "pullRequestApprovalStateChanged" starts nothing`},
		{"source updated on a closed pull request", "pull_request_source_updated.json", func(d map[string]any) { d["pullRequestStatus"] = "Closed" },
			"pull request 7 is closed, not open"},
		{"source updated on a merged pull request", "pull_request_source_updated.json", func(d map[string]any) { d["isMerged"] = "True" },
			"pull request 7 is merged, not open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ignored, err := normalizeEdited(t, tt.file, tt.edit)
			require.NoError(t, err)
			assert.Equal(t, tt.reason, ignored)
			assert.Equal(t, "widget", ev.Repo)
			assert.Equal(t, event.HostCodeCommit, ev.Host)
			assert.NotEmpty(t, ev.DeliveryID)
		})
	}
}

// TestNormalizeMalformed checks events missing what a run needs fail with
// ErrMalformedEvent.
func TestNormalizeMalformed(t *testing.T) {
	tests := []struct {
		name, file string
		edit       func(d map[string]any)
		msg        string
	}{
		{"branch update without commit", "branch_updated.json", func(d map[string]any) { delete(d, "commitId") },
			"referenceUpdated of refs/heads/main names no commitId"},
		{"tag without a name", "tag_created.json", func(d map[string]any) { d["referenceFullName"] = "refs/tags/" },
			`tag reference "refs/tags/" is not under refs/tags/`},
		{"pull request id not a number", "pull_request_created.json", func(d map[string]any) { d["pullRequestId"] = "seven" },
			`pullRequestId "seven" is not a pull request number`},
		{"pull request without source commit", "pull_request_created.json", func(d map[string]any) { delete(d, "sourceCommit") },
			"pull request 7 names no sourceCommit"},
		{"pull request from a tag", "pull_request_created.json", func(d map[string]any) { d["sourceReference"] = "refs/tags/v1" },
			"pull request 7 names no source or destination branch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ignored, err := normalizeEdited(t, tt.file, tt.edit)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrMalformedEvent))
			assert.Contains(t, err.Error(), tt.msg)
			assert.Empty(t, ignored)
		})
	}
}

// TestNormalizeReferenceName builds the full ref from referenceName when
// referenceFullName is absent.
func TestNormalizeReferenceName(t *testing.T) {
	ev, ignored, err := normalizeEdited(t, "branch_updated.json", func(d map[string]any) {
		delete(d, "referenceFullName")
		d["referenceName"] = "release/2.0"
	})
	require.NoError(t, err)
	require.Empty(t, ignored)
	assert.Equal(t, "refs/heads/release/2.0", ev.Ref)
	assert.Equal(t, "release/2.0", ev.Branch)
}

// TestNormalizeSenderFallsBackToAuthor uses the pull request's author when
// the event has no caller.
func TestNormalizeSenderFallsBackToAuthor(t *testing.T) {
	ev, _, err := normalizeEdited(t, "pull_request_source_updated.json", func(d map[string]any) { delete(d, "callerUserArn") })
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::123456789012:user/jane-doe", ev.Sender)
	assert.Equal(t, "pr-7", ev.RefLabel())
}

// TestNormalizeKeepsTitleVerbatim checks a pull request title is data: it
// reaches the Event unchanged, shell syntax and newlines included.
func TestNormalizeKeepsTitleVerbatim(t *testing.T) {
	const title = "Fix $(rm -rf /)\n`id`; echo ${HOME} && true"
	ev, _, err := normalizeEdited(t, "pull_request_created.json", func(d map[string]any) {
		d["title"] = title
		d["sourceReference"] = "refs/heads/a;b|c&d"
	})
	require.NoError(t, err)
	assert.Equal(t, title, ev.Message)
	assert.Equal(t, title, ev.PullRequest.Title)
	assert.Equal(t, "a;b|c&d", ev.Branch)
	assert.Equal(t, "a;b|c&d", ev.PullRequest.SourceBranch)
}
