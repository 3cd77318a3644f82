package report

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// GitLab reports runs to GitLab: a commit status per stage and one
// merge-request note per run, through GitLab's REST API (v4).
type GitLab struct{ restAPI }

// DefaultGitLabAPI is gitlab.com's API base.
const DefaultGitLabAPI = "https://gitlab.com/api/v4/"

// NewGitLab returns a reporter for the API at apiURL ("" means gitlab.com)
// that authenticates with token, a personal, project or group access token
// with the api scope. hc nil means a client with a 30 s timeout.
func NewGitLab(apiURL, token string, hc *http.Client) (*GitLab, error) {
	api, err := newRestAPI("GitLab", apiURL, DefaultGitLabAPI, "PRIVATE-TOKEN", "", token, hc)
	if err != nil {
		return nil, err
	}
	return &GitLab{api}, nil
}

// gitlabStates maps a kiln stage state to a GitLab commit status state.
var gitlabStates = map[string]string{
	"pending":   "pending",
	"waiting":   "pending",
	"running":   "running",
	"succeeded": "success",
	"failed":    "failed",
	"cancelled": "canceled",
}

// SetStatus sets the commit status of one stage on run.Commit, named
// "kiln/<pipeline>/<stage>". GitLab refuses to set a status to the state
// it has (a retried call does that), and that refusal is success.
func (g *GitLab) SetStatus(ctx context.Context, run Run, stage Stage) error {
	state, err := stateOf(run, stage, gitlabStates)
	if err != nil {
		return err
	}
	name := statusContext(run.Pipeline, stage.Name)
	body := map[string]string{"state": state, "name": name, "description": describeStage(stage)}
	if run.URL != "" {
		body["target_url"] = run.URL
	}
	what := fmt.Sprintf("set status %s on %s@%s", name, run.Repo, run.Commit)
	_, err = g.do(ctx, http.MethodPost, g.project(run.Repo)+"/statuses/"+url.PathEscape(run.Commit), nil, body, nil, what)
	if err != nil && strings.Contains(err.Error(), "Cannot transition status") {
		return nil
	}
	return err
}

// UpsertComment keeps one note per run on merge request run.PR: it edits the
// note that starts with the run's marker, or creates it, and returns its
// ID. Looking up first makes a retried call edit the note an earlier
// attempt created.
func (g *GitLab) UpsertComment(ctx context.Context, run Run) (int64, error) {
	if run.PR <= 0 {
		return 0, invalid("run %s is not for a merge request", run.RunID)
	}
	notes := fmt.Sprintf("%s/merge_requests/%d/notes", g.project(run.Repo), run.PR)
	where := fmt.Sprintf("%s!%d", run.Repo, run.PR)
	marker, body := Marker(run.RunID), map[string]string{"body": CommentBody(run)}
	for page := "1"; page != ""; {
		var list []struct {
			ID   int64  `json:"id"`
			Body string `json:"body"`
		}
		q := url.Values{"per_page": {"100"}, "page": {page}, "sort": {"asc"}, "order_by": {"created_at"}}
		h, err := g.do(ctx, http.MethodGet, notes, q, nil, &list, "list notes on "+where)
		if err != nil {
			return 0, err
		}
		for _, n := range list {
			if strings.HasPrefix(n.Body, marker) {
				_, err := g.do(ctx, http.MethodPut, notes+"/"+strconv.FormatInt(n.ID, 10), nil, body, nil,
					fmt.Sprintf("edit note %d on %s", n.ID, where))
				return n.ID, err
			}
		}
		page = h.Get("X-Next-Page")
	}
	var created struct {
		ID int64 `json:"id"`
	}
	_, err := g.do(ctx, http.MethodPost, notes, nil, body, &created, "create note on "+where)
	return created.ID, err
}

// project is the API path of a project, by its URL-encoded full path.
func (g *GitLab) project(repo string) string {
	return "projects/" + url.PathEscape(repo)
}
