package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/rs/zerolog"
)

// issueComment is the part of an issue_comment payload kiln reads. It is
// parsed here rather than by go-github, which cannot read Gitea's: Gitea's
// repository.owner is a string.
type issueComment struct {
	Action string `json:"action"`
	Issue  struct {
		Number      int             `json:"number"`
		PullRequest json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	// Gitea says whether the issue is a pull request here.
	IsPull  bool `json:"is_pull"`
	Comment struct {
		Body string `json:"body"`
		User struct {
			Login string `json:"login"`
		} `json:"user"`
		AuthorAssociation string `json:"author_association"`
	} `json:"comment"`
}

// comment handles an issue_comment delivery: a new comment on a pull
// request goes to intake.AnswerComment; others are ignored.
func (h *Handler) comment(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, repo string, payload []byte) {
	var c issueComment
	if err := json.Unmarshal(payload, &c); err != nil {
		h.reject(w, log, http.StatusBadRequest, fmt.Sprintf("%v: issue_comment: %v", ErrMalformedPayload, err))
		return
	}
	isPull := c.IsPull || (len(c.Issue.PullRequest) > 0 && string(c.Issue.PullRequest) != "null")
	switch {
	case c.Action != "created":
		intake.Ignore(w, log, fmt.Sprintf("issue_comment action %q starts nothing", c.Action))
	case !isPull:
		intake.Ignore(w, log, fmt.Sprintf("a comment on issue #%d, which is no pull request, starts nothing", c.Issue.Number))
	default:
		intake.AnswerComment(ctx, w, log, h.cfg, h.starter, repo, intake.Comment{Number: c.Issue.Number,
			Body: c.Comment.Body, By: c.Comment.User.Login, Association: strings.ToUpper(c.Comment.AuthorAssociation)})
	}
}
