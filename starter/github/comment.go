package github

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kiln-ci/kiln/starter/intake"
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

func (c issueComment) onPullRequest() bool {
	return c.IsPull || (len(c.Issue.PullRequest) > 0 && string(c.Issue.PullRequest) != "null")
}

// Comment reads an issue_comment delivery: a new comment on a pull request
// goes to intake.AnswerComment; for other comments it returns nil, and
// Normalize says why they start nothing.
func (Host) Comment(eventType string, payload []byte) (*intake.Comment, error) {
	if eventType != "issue_comment" {
		return nil, nil
	}
	var c issueComment
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, malformed("issue_comment", err)
	}
	if c.Action != "created" || !c.onPullRequest() {
		return nil, nil
	}
	return &intake.Comment{Number: c.Issue.Number, Body: c.Comment.Body, By: c.Comment.User.Login,
		Association: strings.ToUpper(c.Comment.AuthorAssociation)}, nil
}

// commentIgnored says why an issue comment Comment passed on starts
// nothing.
func commentIgnored(payload []byte) string {
	var c issueComment
	_ = json.Unmarshal(payload, &c) // Comment read it already
	if c.Action != "created" {
		return fmt.Sprintf("issue_comment action %q starts nothing", c.Action)
	}
	return fmt.Sprintf("a comment on issue #%d, which is no pull request, starts nothing", c.Issue.Number)
}
