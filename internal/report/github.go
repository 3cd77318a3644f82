// Package report tells a GitHub-compatible host (GitHub, GitHub Enterprise,
// Gitea) how a pipeline run is going: one commit status per stage and one
// pull-request comment per run.
package report

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// defaultTimeout bounds a request when GitHubOptions.HTTPClient is nil.
const defaultTimeout = 30 * time.Second

// commentsPerPage is the largest page GitHub allows; Gitea caps it lower
// and says so through the Link header, which pagination follows anyway.
const commentsPerPage = 100

// GitHubOptions configures a Reporter.
type GitHubOptions struct {
	// APIURL is the REST API's base URL. "" means https://api.github.com/.
	// GitHub Enterprise: https://ghe.example.com/api/v3/.
	// Gitea: https://gitea.example.com/api/v1/.
	APIURL string
	// Token authenticates every request as "Authorization: Bearer <token>".
	// It is never logged and never appears in an error.
	Token string
	// HTTPClient sends the requests; nil means a client with a 30s timeout.
	// Tests inject one with a stub transport.
	HTTPClient *http.Client
}

// Reporter posts commit statuses and pull-request comments for runs.
// It is safe for concurrent use.
type Reporter struct {
	client *gh.Client
	token  string
}

// Stage is one stage's state for reporting.
type Stage struct {
	Name string
	// State is pending, running, succeeded, failed or cancelled.
	State    string
	Duration time.Duration
	// Error is why the stage failed, for a failed stage.
	Error string
}

// Run is what a report shows about one pipeline run.
type Run struct {
	Repo     string // "owner/name"
	Commit   string // the SHA statuses attach to
	Pipeline string
	RunID    string // the workflow ID; it keys the run's comment
	URL      string // the run in the Temporal Web UI
	PR       int    // 0 when the run is not for a pull request
	Stages   []Stage
	// Outcome is "" while running, else succeeded, failed or cancelled.
	Outcome string
	// LogTail is the last lines of the failing step's log, for a failure.
	LogTail string
	// Tests are the build's test reports, shown under the outcome.
	Tests []TestReport
}

// NewGitHub returns a Reporter for the host at o.APIURL.
func NewGitHub(o GitHubOptions) (*Reporter, error) {
	if o.Token == "" {
		return nil, errors.New("report: GitHubOptions.Token is empty")
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	client := gh.NewClient(hc).WithAuthToken(o.Token)
	if o.APIURL != "" {
		base, err := apiBase(o.APIURL)
		if err != nil {
			return nil, err
		}
		// Set BaseURL directly: WithEnterpriseURLs would append api/v3/
		// to Gitea's /api/v1/.
		client.BaseURL = base
	}
	return &Reporter{client: client, token: o.Token}, nil
}

// apiBase parses an API base URL, adding the trailing slash go-github needs.
func apiBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("report: APIURL %q is not an http(s) URL", raw)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u, nil
}

// SetStatus sets the commit status of one stage on run.Commit: context
// "kiln/<pipeline>/<stage>", target_url run.URL, and a description of at
// most 140 characters, taken from stage.Error for a failure.
func (r *Reporter) SetStatus(ctx context.Context, run Run, stage Stage) error {
	owner, repo, err := splitRepo(run.Repo)
	if err != nil {
		return err
	}
	if run.Commit == "" {
		return invalid("run %s has no commit to set a status on", run.RunID)
	}
	state, ok := statusStates[stage.State]
	if !ok {
		return invalid("stage %s has unknown state %q", stage.Name, stage.State)
	}
	status := &gh.RepoStatus{
		State:       gh.String(state),
		Context:     gh.String(statusContext(run.Pipeline, stage.Name)),
		Description: gh.String(describeStage(stage)),
	}
	if run.URL != "" {
		status.TargetURL = gh.String(run.URL)
	}
	_, _, err = r.client.Repositories.CreateStatus(ctx, owner, repo, run.Commit, status)
	return r.classify(err, fmt.Sprintf("set status %s on %s@%s", status.GetContext(), run.Repo, run.Commit))
}

// UpsertComment keeps one comment per run on run.PR: it edits the comment
// that carries the run's marker, or creates it. It returns the comment ID.
// Looking up before creating makes a retried call edit the comment an
// earlier attempt created instead of adding a second one.
func (r *Reporter) UpsertComment(ctx context.Context, run Run) (int64, error) {
	owner, repo, err := splitRepo(run.Repo)
	if err != nil {
		return 0, err
	}
	if run.PR <= 0 {
		return 0, invalid("run %s is not for a pull request", run.RunID)
	}
	if run.RunID == "" {
		return 0, invalid("run on %s#%d has no RunID to key its comment", run.Repo, run.PR)
	}
	where := fmt.Sprintf("%s#%d", run.Repo, run.PR)
	id, err := r.findComment(ctx, owner, repo, run.PR, Marker(run.RunID))
	if err != nil {
		return 0, r.classify(err, "list comments on "+where)
	}
	body := &gh.IssueComment{Body: gh.String(CommentBody(run))}
	if id != 0 {
		if _, _, err := r.client.Issues.EditComment(ctx, owner, repo, id, body); err != nil {
			return 0, r.classify(err, fmt.Sprintf("edit comment %d on %s", id, where))
		}
		return id, nil
	}
	c, _, err := r.client.Issues.CreateComment(ctx, owner, repo, run.PR, body)
	if err != nil {
		return 0, r.classify(err, "create comment on "+where)
	}
	return c.GetID(), nil
}

// findComment returns the ID of the first comment on the issue whose body
// starts with marker, or 0, following the Link header through every page.
// Starts, not contains: another run's comment may quote the marker in the
// build output it shows.
func (r *Reporter) findComment(ctx context.Context, owner, repo string, number int, marker string) (int64, error) {
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: commentsPerPage}}
	for {
		comments, resp, err := r.client.Issues.ListComments(ctx, owner, repo, number, opts)
		if err != nil {
			return 0, err
		}
		for _, c := range comments {
			if strings.HasPrefix(c.GetBody(), marker) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
}

// splitRepo splits "owner/name".
func splitRepo(full string) (owner, repo string, err error) {
	owner, repo, ok := strings.Cut(full, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return "", "", invalid("repo %q is not owner/name", full)
	}
	return owner, repo, nil
}
