package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/rs/zerolog"
)

// ApproveCommand starts the first line of a pull request comment that
// approves the runs of the commit it names, "/kiln approve 1a2b3c4", which
// wait because their change is untrusted. The commit is the one the person
// reviewed: a push made while they read is not approved with it.
const ApproveCommand = "/kiln approve"

// approveCommit is what names the commit: 7 to 40 hex digits.
var approveCommit = regexp.MustCompile(`^[0-9a-fA-F]{7,40}$`)

// PullRequestApprover approves, for a trusted commenter, the runs of a pull
// request's commit that wait for approval, and returns their IDs.
// starter.Runs is one.
type PullRequestApprover interface {
	ApprovePullRequest(ctx context.Context, repo string, number int, commit, by string) ([]string, error)
}

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

// comment handles an issue_comment delivery: a trusted person's
// "/kiln approve" on a pull request approves its waiting runs. Any other
// comment is ignored.
func (h *Handler) comment(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, repo string, payload []byte) {
	var c issueComment
	if err := json.Unmarshal(payload, &c); err != nil {
		h.reject(w, log, http.StatusBadRequest, fmt.Sprintf("%v: issue_comment: %v", ErrMalformedPayload, err))
		return
	}
	first, _, _ := strings.Cut(strings.TrimSpace(c.Comment.Body), "\n")
	words := strings.Fields(first)
	isPull := c.IsPull || (len(c.Issue.PullRequest) > 0 && string(c.Issue.PullRequest) != "null")
	by, association := c.Comment.User.Login, strings.ToUpper(c.Comment.AuthorAssociation)
	switch {
	case c.Action != "created":
		h.ignore(w, log, fmt.Sprintf("issue_comment action %q starts nothing", c.Action))
		return
	case len(words) < 2 || strings.Join(words[:2], " ") != ApproveCommand:
		h.ignore(w, log, "the comment is no kiln command")
		return
	case len(words) != 3 || !approveCommit.MatchString(words[2]):
		h.ignore(w, log, fmt.Sprintf("name the commit you reviewed: %s <commit>, with at least 7 of its hex digits", ApproveCommand))
		return
	case !isPull:
		h.ignore(w, log, fmt.Sprintf("%s on issue #%d, which is no pull request", ApproveCommand, c.Issue.Number))
		return
	case c.Issue.Number <= 0:
		h.reject(w, log, http.StatusBadRequest, fmt.Sprintf("%v: pull request number %d", ErrMalformedPayload, c.Issue.Number))
		return
	case !h.cfg.Repo(repo).TrustsCommenter(by, association):
		log.Warn().Str("by", by).Str("association", association).Int("pull_request", c.Issue.Number).
			Msg("an untrusted commenter asked to approve")
		h.ignore(w, log, fmt.Sprintf("%s may not approve: %s is not trusted in %s (see repos[].trust)", by, orNone(association), repo))
		return
	}
	approver, ok := h.starter.(PullRequestApprover)
	if !ok {
		h.reject(w, log, http.StatusNotImplemented, "this kiln cannot approve runs from comments")
		return
	}
	// The runs carry the repository as kiln.yaml spells it.
	ctx, cancel := context.WithTimeout(ctx, intake.StartTimeout)
	defer cancel()
	ids, err := approver.ApprovePullRequest(ctx, h.cfg.Repo(repo).Name, c.Issue.Number, words[2], by)
	if err != nil {
		h.reject(w, log, http.StatusInternalServerError, err.Error())
		return
	}
	if len(ids) == 0 {
		h.ignore(w, log, fmt.Sprintf("no run of pull request #%d at %s waits for approval", c.Issue.Number, words[2]))
		return
	}
	log.Info().Str("by", by).Strs("runs", ids).Msg("approved by comment")
	intake.WriteJSON(w, http.StatusOK, Response{Approved: ids})
}

func (h *Handler) ignore(w http.ResponseWriter, log zerolog.Logger, reason string) {
	log.Info().Str("reason", reason).Msg("webhook ignored")
	intake.WriteJSON(w, http.StatusAccepted, Response{Ignored: reason})
}

func orNone(association string) string {
	if association == "" {
		return "a commenter with no association given"
	}
	return "association " + association
}
