package intake

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
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

// Comment is a new comment on a pull or merge request, as a host sent it.
type Comment struct {
	// Number is the pull or merge request's.
	Number int
	Body   string
	// By is the commenter's login; Association their relation to the
	// repository, when the host says (GitHub does).
	By, Association string
}

// AnswerComment answers a comment on a pull request of repo: a trusted
// person's "/kiln approve <commit>" approves the waiting runs of that
// commit; any other comment is ignored, with why.
func AnswerComment(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, cfg *config.Config, runs RunStarter, repo string, c Comment) {
	first, _, _ := strings.Cut(strings.TrimSpace(c.Body), "\n")
	words := strings.Fields(first)
	ignore := func(reason string) { Ignore(w, log, reason) }
	switch {
	case len(words) < 2 || strings.Join(words[:2], " ") != ApproveCommand:
		ignore("the comment is no kiln command")
		return
	case len(words) != 3 || !approveCommit.MatchString(words[2]):
		ignore(fmt.Sprintf("name the commit you reviewed: %s <commit>, with at least 7 of its hex digits", ApproveCommand))
		return
	case c.Number <= 0:
		Reject(w, log, http.StatusBadRequest, fmt.Sprintf("%v: pull request number %d", ErrMalformed, c.Number))
		return
	case !cfg.Repo(repo).TrustsCommenter(c.By, c.Association):
		log.Warn().Str("by", c.By).Str("association", c.Association).Int("pull_request", c.Number).
			Msg("an untrusted commenter asked to approve")
		ignore(fmt.Sprintf("%s may not approve: %s is not trusted in %s (see repos[].trust)", c.By, orNone(c.Association), repo))
		return
	}
	approver, ok := runs.(PullRequestApprover)
	if !ok {
		Reject(w, log, http.StatusNotImplemented, "this kiln cannot approve runs from comments")
		return
	}
	// The runs carry the repository as kiln.yaml spells it.
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	ids, err := approver.ApprovePullRequest(ctx, cfg.Repo(repo).Name, c.Number, words[2], c.By)
	if err != nil {
		Reject(w, log, http.StatusInternalServerError, err.Error())
		return
	}
	if len(ids) == 0 {
		ignore(fmt.Sprintf("no run of pull request #%d at %s waits for approval", c.Number, words[2]))
		return
	}
	log.Info().Str("by", c.By).Strs("runs", ids).Msg("approved by comment")
	WriteJSON(w, http.StatusOK, Response{Approved: ids})
}

func orNone(association string) string {
	if association == "" {
		return "a commenter with no association given"
	}
	return "association " + association
}
