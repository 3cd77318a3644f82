package github

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
)

// TestApproveComment covers the comments that approve and those that do
// not, in GitHub's payload and in Gitea's, whose repository.owner is a
// string go-github cannot read.
func TestApproveComment(t *testing.T) {
	github := func(body, login, association string) string {
		return `{"action":"created","issue":{"number":42,"pull_request":{"url":"u"}},"comment":{"body":` + strconv.Quote(body) +
			`,"user":{"login":"` + login + `"},"author_association":"` + association + `"},"repository":{"full_name":"acme/widget"}}`
	}
	gitea := `{"action":"created","is_pull":true,"issue":{"number":42},"comment":{"body":"/kiln approve c0ffee1","user":{"login":"dev2"}},` +
		`"repository":{"full_name":"acme/widget","owner":"acme"}}`
	tests := []struct {
		name, payload string
		status        int
		approved      string
	}{
		{"member approves", github("/kiln approve 1a2b3c4d", "ada", "MEMBER"), http.StatusOK, "acme/widget#42@1a2b3c4d by ada"},
		{"owner, with more lines", github("  /kiln approve  ABCDEF1  \nlooks fine", "bo", "OWNER"), http.StatusOK, "acme/widget#42@ABCDEF1 by bo"},
		{"without the commit", github("/kiln approve", "ada", "MEMBER"), http.StatusAccepted, ""},
		{"a commit too short", github("/kiln approve 1a2b", "ada", "MEMBER"), http.StatusAccepted, ""},
		{"not a commit", github("/kiln approve main", "ada", "MEMBER"), http.StatusAccepted, ""},
		{"contributor may not", github("/kiln approve 1a2b3c4d", "eve", "CONTRIBUTOR"), http.StatusAccepted, ""},
		{"other comments", github("LGTM /kiln approve 1a2b3c4d", "ada", "MEMBER"), http.StatusAccepted, ""},
		{"gitea without an association", gitea, http.StatusAccepted, ""},
		{"edited", `{"action":"edited","issue":{"number":42,"pull_request":{}},"comment":{"body":"/kiln approve 1a2b3c4"},"repository":{"full_name":"acme/widget"}}`, http.StatusAccepted, ""},
		{"an issue", `{"action":"created","issue":{"number":42},"comment":{"body":"/kiln approve 1a2b3c4","author_association":"OWNER"},"repository":{"full_name":"acme/widget"}}`, http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pipelinesFor("acme/widget")
			starter := &fakeStarter{}
			h := NewHandler(cfg, map[string][]byte{"acme/widget": []byte(testSecret)}, starter, zerolog.Nop())
			status, resp := serve(t, h, newDelivery("issue_comment", "d-1", []byte(tt.payload)))
			assert.Equal(t, tt.status, status, "%+v", resp)
			if tt.approved == "" {
				assert.Empty(t, starter.Approvals())
				assert.NotEmpty(t, resp.Ignored)
				return
			}
			require.Equal(t, []string{tt.approved}, starter.Approvals())
			_, commit, _ := strings.Cut(tt.approved, "@")
			commit, _, _ = strings.Cut(commit, " ")
			assert.Equal(t, []string{"kiln/pr-42/" + commit}, resp.Approved)
		})
	}
	// Gitea sends no association: a login the repository lists may approve.
	cfg := pipelinesFor("acme/widget")
	cfg.Repos[0].Trust = &config.Trust{Logins: []string{"dev2"}}
	starter := &fakeStarter{}
	h := NewHandler(cfg, map[string][]byte{"acme/widget": []byte(testSecret)}, starter, zerolog.Nop())
	status, _ := serve(t, h, newDelivery("issue_comment", "d-2", []byte(gitea)))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{"acme/widget#42@c0ffee1 by dev2"}, starter.Approvals())
}
