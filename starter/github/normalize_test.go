package github

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/event"
)

// TestNormalizeTestdata covers what the corpus lacks: ordinary and forced
// pushes, fork pull requests, and Gitea's way of marking creations, deletions
// and pull request updates.
func TestNormalizeTestdata(t *testing.T) {
	tests := []struct {
		file, eventType string
		want            event.Event
		ignored         string
	}{{
		file: "push_feature_branch.json", eventType: "push",
		want: event.Event{
			Kind: event.KindBranch, Repo: "acme/widget", Ref: "refs/heads/feature/login", Branch: "feature/login",
			Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", Before: "9049f1265b7d61be4a8904a9a27120d2064dab3b",
			Sender: "dev1", Email: "dev1@example.com", Message: "Add login form", DeliveryID: "d-1",
		},
	}, {
		file: "push_forced.json", eventType: "push",
		want: event.Event{
			Kind: event.KindBranch, Repo: "acme/widget", Ref: "refs/heads/main", Branch: "main",
			Commit: "b7f3e0c1d9a2e84f5c6b7a8d9e0f1a2b3c4d5e6f", Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			Forced: true, Sender: "dev1", Email: "dev1@example.com", Message: "Rewrite history\n\nSquash the login work.", DeliveryID: "d-1",
		},
	}, {
		file: "pull_request_fork.json", eventType: "pull_request",
		want: event.Event{
			Kind: event.KindReview, Repo: "acme/widget", Ref: "refs/pull/42/head", Branch: "fix-typo",
			Commit: "34c5c7793cb3b279e22454cb6750c80560547b3a", Sender: "outsider", Message: "Fix typo in README",
			DeliveryID: "d-1",
			PullRequest: &event.PullRequest{
				Number: 42, Title: "Fix typo in README", SourceBranch: "fix-typo", TargetBranch: "main",
				SourceCommit: "34c5c7793cb3b279e22454cb6750c80560547b3a", TargetCommit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				SourceCloneURL: "https://github.com/outsider/widget.git", Fork: true,
				Author: "outsider", AuthorAssociation: "CONTRIBUTOR",
			},
		},
	}, {
		file: "push_branch_deleted.json", eventType: "push", ignored: "branch feature/login deleted",
	}, {
		file: "gitea_push_deleted.json", eventType: "push", ignored: "branch old-work deleted",
	}, {
		file: "gitea_push_created.json", eventType: "push",
		want: event.Event{
			Kind: event.KindBranch, Repo: "acme/gadget", Ref: "refs/heads/release/2.0", Branch: "release/2.0",
			Commit: "5f8a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a", Sender: "dev2", Email: "dev2@noreply.gitea.example.com", Message: "Start release 2.0\n",
			DeliveryID: "d-1",
		},
	}, {
		file: "gitea_pull_request_synchronized.json", eventType: "pull_request",
		want: event.Event{
			Kind: event.KindReview, Repo: "acme/gadget", Ref: "refs/pull/7/head", Branch: "faster-parser",
			Commit: "c0ffee1234567890abcdef1234567890abcdef12", Sender: "dev2", Message: "Speed up the parser",
			DeliveryID: "d-1",
			PullRequest: &event.PullRequest{
				Number: 7, Title: "Speed up the parser", SourceBranch: "faster-parser", TargetBranch: "main",
				SourceCommit: "c0ffee1234567890abcdef1234567890abcdef12", TargetCommit: "1badd00d1badd00d1badd00d1badd00d1badd00d",
				SourceCloneURL: "https://gitea.example.com/acme/gadget.git",
				Author:         "dev2",
			},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, ignored, err := Normalize(tt.eventType, "d-1", readTestdata(t, tt.file))
			require.NoError(t, err)
			assert.Equal(t, tt.ignored, ignored)
			if tt.ignored == "" {
				assert.Equal(t, tt.want, ev)
			}
		})
	}
}

// TestNormalizeIgnores covers deliveries that start nothing, and why.
func TestNormalizeIgnores(t *testing.T) {
	push := func(ref, before, after string) []byte {
		return mustJSON(t, map[string]any{"ref": ref, "before": before, "after": after,
			"repository": map[string]any{"full_name": "acme/widget"}})
	}
	sha := "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	tests := []struct {
		name, eventType string
		payload         []byte
		ignored         string
	}{
		{"issues event", "issues", []byte(`{"action":"opened"}`), `event "issues" starts nothing`},
		{"workflow_run event", "workflow_run", []byte(`{}`), `event "workflow_run" starts nothing`},
		{"ping", "ping", []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`), ReasonPing},
		{"tag deleted", "push", push("refs/tags/v1.0", sha, strings.Repeat("0", 40)), "tag v1.0 deleted"},
		{"sha256 repository deletion", "push", push("refs/heads/x", sha, strings.Repeat("0", 64)), "branch x deleted"},
		{"notes ref", "push", push("refs/notes/commits", sha, sha), "push to refs/notes/commits starts nothing: not a branch or tag"},
		{"pull request edited", "pull_request", []byte(`{"action":"edited","number":1,"pull_request":{"number":1}}`),
			`pull_request action "edited" starts nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ignored, err := Normalize(tt.eventType, "d-1", tt.payload)
			require.NoError(t, err)
			assert.Equal(t, tt.ignored, ignored)
		})
	}
}

// TestNormalizeMalformed checks that payloads unfit for their event type fail
// with ErrMalformedPayload, which the handler answers with 400.
func TestNormalizeMalformed(t *testing.T) {
	tests := map[string]struct{ eventType, payload string }{
		"not JSON":                  {"push", `{"ref": "refs/heads/main",`},
		"wrong field type":          {"push", `{"ref": 7}`},
		"push without ref":          {"push", `{"after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"}`},
		"push without after":        {"push", `{"ref":"refs/heads/main"}`},
		"pull request without head": {"pull_request", `{"action":"opened","number":3}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, ignored, err := Normalize(tt.eventType, "d-1", []byte(tt.payload))
			assert.ErrorIs(t, err, ErrMalformedPayload)
			assert.Empty(t, ignored)
		})
	}
}

// TestNormalizeKeepsRefNamesVerbatim checks that ref names built from shell
// metacharacters reach the Event byte for byte: they are data, and quoting
// them is the consumer's business (builds see them only as env values).
func TestNormalizeKeepsRefNamesVerbatim(t *testing.T) {
	names := []string{
		"$(touch${IFS}pwned);rm -rf ~",
		"`id`|tee /tmp/x&&echo 'a\"b'",
		"a b\\c",
		"${KILN_SECRET:-x}*?[!]",
		"café/功能-🚀",
	}
	for _, name := range names {
		t.Run("branch", func(t *testing.T) {
			body := mustJSON(t, map[string]any{"ref": "refs/heads/" + name, "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				"repository": map[string]any{"full_name": "acme/widget"}})
			ev, _, err := Normalize("push", "d-1", body)
			require.NoError(t, err)
			assert.Equal(t, "refs/heads/"+name, ev.Ref)
			assert.Equal(t, name, ev.Branch)
		})
		t.Run("tag", func(t *testing.T) {
			body := mustJSON(t, map[string]any{"ref": "refs/tags/" + name, "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				"repository": map[string]any{"full_name": "acme/widget"}})
			ev, _, err := Normalize("push", "d-1", body)
			require.NoError(t, err)
			assert.Equal(t, name, ev.Tag)
		})
		t.Run("pull request", func(t *testing.T) {
			body := mustJSON(t, map[string]any{"action": "opened", "number": 5, "pull_request": map[string]any{
				"number": 5, "title": name,
				"head": map[string]any{"ref": name, "sha": "34c5c7793cb3b279e22454cb6750c80560547b3a"},
				"base": map[string]any{"ref": name}}})
			ev, _, err := Normalize("pull_request", "d-1", body)
			require.NoError(t, err)
			assert.Equal(t, name, ev.Branch)
			assert.Equal(t, name, ev.PullRequest.SourceBranch)
			assert.Equal(t, name, ev.PullRequest.TargetBranch)
			assert.Equal(t, name, ev.Message)
		})
	}
}

// TestNormalizeRefusesNamesGitWouldNot is the class of names no git host
// sends: refs with control characters or longer than a path, delivery IDs
// that are not a short printable token, pull requests numbered 0 or less.
// Each is a 400 naming what is wrong, never a 500 or a run.
func TestNormalizeRefusesNamesGitWouldNot(t *testing.T) {
	const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	push := func(ref string) []byte {
		return mustJSON(t, map[string]any{"ref": ref, "after": sha, "repository": map[string]any{"full_name": "acme/widget"}})
	}
	pr := func(number int, head string) []byte {
		return mustJSON(t, map[string]any{"action": "opened", "number": number, "pull_request": map[string]any{
			"number": number, "head": map[string]any{"ref": head, "sha": sha}, "base": map[string]any{"ref": "main"}}})
	}
	tests := []struct {
		name, eventType, delivery string
		payload                   []byte
		says                      string
	}{
		{"newline in a branch", "push", "d-1", push("refs/heads/a\nb"), "control character U+000A"},
		{"tab in a tag", "push", "d-1", push("refs/tags/v1\t"), "control character U+0009"},
		{"DEL in a branch", "push", "d-1", push("refs/heads/a\u007f"), "control character U+007F"},
		{"NUL in a pull request's head", "pull_request", "d-1", pr(3, "fix\u0000"), "control character U+0000"},
		{"a ref longer than a path", "push", "d-1", push("refs/heads/" + strings.Repeat("x", 4096)), "git refs are at most 4096"},
		{"pull request 0", "pull_request", "d-1", pr(0, "fix"), "pull request number 0"},
		{"pull request -2", "pull_request", "d-1", pr(-2, "fix"), "pull request number -2"},
		{"a delivery ID of 101 bytes", "push", strings.Repeat("d", 101), push("refs/heads/main"), "101 bytes long"},
		{"a delivery ID with a slash", "push", "../../etc", push("refs/heads/main"), "holds '/'"},
		{"a delivery ID with a space", "ping", "a b", []byte(`{"zen":"x"}`), "holds ' '"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ignored, err := Normalize(tt.eventType, tt.delivery, tt.payload)
			require.ErrorIs(t, err, ErrMalformedPayload)
			assert.Contains(t, err.Error(), tt.says)
			assert.Empty(t, ignored)
		})
	}
}

// mustJSON marshals v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
