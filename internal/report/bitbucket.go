package report

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Bitbucket reports runs to Bitbucket Cloud: a build status per stage and
// one pull-request comment per run, through its REST API 2.0.
type Bitbucket struct{ restAPI }

// DefaultBitbucketAPI is Bitbucket Cloud's API base.
const DefaultBitbucketAPI = "https://api.bitbucket.org/2.0/"

// NewBitbucket returns a reporter for the API at apiURL ("" means
// Bitbucket Cloud) that authenticates with token, a repository or
// workspace access token allowed to write pull requests and statuses. hc
// nil means a client with a 30 s timeout.
func NewBitbucket(apiURL, token string, hc *http.Client) (*Bitbucket, error) {
	api, err := newRestAPI("Bitbucket", apiURL, DefaultBitbucketAPI, "Authorization", "Bearer ", token, hc)
	if err != nil {
		return nil, err
	}
	return &Bitbucket{api}, nil
}

// bitbucketStates maps a kiln stage state to a Bitbucket build state; it
// has no "pending", so a stage not started yet is in progress.
var bitbucketStates = map[string]string{
	"pending":   "INPROGRESS",
	"waiting":   "INPROGRESS",
	"running":   "INPROGRESS",
	"succeeded": "SUCCESSFUL",
	"failed":    "FAILED",
	"cancelled": "STOPPED",
}

// SetStatus sets the build status of one stage on run.Commit, keyed
// "kiln/<pipeline>/<stage>". Bitbucket needs a link: run.URL, the run in
// the Web UI (kiln worker --ui-url).
func (b *Bitbucket) SetStatus(ctx context.Context, run Run, stage Stage) error {
	state, err := stateOf(run, stage, bitbucketStates)
	if err != nil {
		return err
	}
	if run.URL == "" {
		return invalid("Bitbucket needs a link for a build status: give the worker --ui-url")
	}
	key := statusContext(run.Pipeline, stage.Name)
	body := map[string]string{"key": key, "state": state, "name": key, "description": describeStage(stage), "url": run.URL}
	_, err = b.do(ctx, http.MethodPost, b.repo(run.Repo)+"/commit/"+url.PathEscape(run.Commit)+"/statuses/build", nil, body, nil,
		fmt.Sprintf("set status %s on %s@%s", key, run.Repo, run.Commit))
	return err
}

// UpsertComment keeps one comment per run on pull request run.PR: it edits
// the comment that starts with the run's marker, or creates it, and
// returns its ID.
func (b *Bitbucket) UpsertComment(ctx context.Context, run Run) (int64, error) {
	if run.PR <= 0 {
		return 0, invalid("run %s is not for a pull request", run.RunID)
	}
	comments := fmt.Sprintf("%s/pullrequests/%d/comments", b.repo(run.Repo), run.PR)
	where := fmt.Sprintf("%s#%d", run.Repo, run.PR)
	marker := Marker(run.RunID)
	body := map[string]any{"content": map[string]string{"raw": CommentBody(run)}}
	type page struct {
		Values []struct {
			ID      int64 `json:"id"`
			Content struct {
				Raw string `json:"raw"`
			} `json:"content"`
		} `json:"values"`
		Next string `json:"next"`
	}
	next, q := comments, url.Values{"pagelen": {"100"}}
	for next != "" {
		var p page
		if _, err := b.do(ctx, http.MethodGet, next, q, nil, &p, "list comments on "+where); err != nil {
			return 0, err
		}
		for _, c := range p.Values {
			if strings.HasPrefix(c.Content.Raw, marker) {
				_, err := b.do(ctx, http.MethodPut, comments+"/"+strconv.FormatInt(c.ID, 10), nil, body, nil,
					fmt.Sprintf("edit comment %d on %s", c.ID, where))
				return c.ID, err
			}
		}
		// next is a whole URL with its own query; the token goes nowhere
		// but the API.
		if p.Next != "" && !strings.HasPrefix(p.Next, b.api) {
			return 0, invalid("list comments on %s: the next page %q is not under %s", where, p.Next, b.api)
		}
		next, q = p.Next, nil
	}
	var created struct {
		ID int64 `json:"id"`
	}
	_, err := b.do(ctx, http.MethodPost, comments, nil, body, &created, "create comment on "+where)
	return created.ID, err
}

// repo is the API path of a repository, "workspace/slug".
func (b *Bitbucket) repo(full string) string {
	ws, slug, _ := strings.Cut(full, "/")
	return "repositories/" + url.PathEscape(ws) + "/" + url.PathEscape(slug)
}
