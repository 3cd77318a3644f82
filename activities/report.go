package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"go.temporal.io/sdk/activity"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/report"
)

// ErrReportRefused: the git host refused kiln's report (bad token, unknown
// repository or pull request, invalid request); retrying cannot help.
const ErrReportRefused = "ReportRefused"

// ReportInput is a run's state to report on its git host.
type ReportInput struct {
	RunID    string         `json:"run_id"`
	Pipeline string         `json:"pipeline"`
	Event    event.Event    `json:"event"`
	Repo     string         `json:"repo"`
	Commit   string         `json:"commit"`
	Report   *config.Report `json:"report,omitempty"`
	// CodeCommit is set for a CodeCommit repository, whose review runs are
	// reported in pull-request comments.
	CodeCommit *config.CodeCommitRepo `json:"codecommit,omitempty"`
	Stages     []ReportStage          `json:"stages"`
	// Changed names the stages whose commit status to set now.
	Changed []string `json:"changed,omitempty"`
	// Outcome is empty while the run goes on; then succeeded, failed or
	// cancelled.
	Outcome string `json:"outcome,omitempty"`
	// Tests are the build's test reports, once it has ended.
	Tests []buildspec.ReportResult `json:"tests,omitempty"`
}

// ReportStage is one stage's state as reported.
type ReportStage struct {
	Name     string        `json:"name"`
	State    string        `json:"state"`
	Duration time.Duration `json:"duration,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// ReportRun sets the commit status of each changed stage, context
// kiln/<pipeline>/<stage>, and for a review run keeps the run's one
// pull-request comment up to date. Statuses and edits are idempotent, so a
// retry repeats them safely; the comment is found by its marker.
func (a *Activities) ReportRun(ctx context.Context, in ReportInput) error {
	if cc := in.CodeCommit; cc != nil && in.Event.Host == event.HostCodeCommit {
		return a.reportCodeCommit(ctx, in, cc)
	}
	rep := in.Report
	if rep == nil {
		return nil
	}
	token, err := report.LoadToken(rep.Token.Env, rep.Token.File)
	if err != nil {
		return permanent(ErrReportRefused, "report on %s: %v", in.Repo, err)
	}
	r, err := newHostReporter(in.Event.Host, rep.APIURL, token)
	if err != nil {
		return permanent(ErrReportRefused, "report on %s: %v", in.Repo, err)
	}
	run := a.reportRun(ctx, in)
	if rep.Statuses == nil || *rep.Statuses {
		for _, s := range run.Stages {
			if slices.Contains(in.Changed, s.Name) {
				if err := r.SetStatus(ctx, run, s); err != nil {
					return classifyReport(err)
				}
			}
		}
	}
	if run.PR != 0 && (rep.Comment == nil || *rep.Comment) {
		if _, err := r.UpsertComment(ctx, run); err != nil {
			return classifyReport(err)
		}
	}
	return nil
}

// hostReporter is a git host's commit statuses and its one comment (a
// GitLab note) per review run.
type hostReporter interface {
	SetStatus(ctx context.Context, run report.Run, stage report.Stage) error
	UpsertComment(ctx context.Context, run report.Run) (int64, error)
}

// newHostReporter reports to GitLab or Bitbucket for their events, and to
// a GitHub-compatible host (GitHub, Gitea) otherwise.
func newHostReporter(host, apiURL, token string) (hostReporter, error) {
	switch host {
	case event.HostGitLab:
		return report.NewGitLab(apiURL, token, nil)
	case event.HostBitbucket:
		return report.NewBitbucket(apiURL, token, nil)
	}
	return report.NewGitHub(report.GitHubOptions{APIURL: apiURL, Token: token})
}

// reportCodeCommit keeps a CodeCommit review run's pull-request comment.
func (a *Activities) reportCodeCommit(ctx context.Context, in ReportInput, cc *config.CodeCommitRepo) error {
	run := a.reportRun(ctx, in)
	pr := in.Event.PullRequest
	if run.PR == 0 || pr == nil || (cc.Comments != nil && !*cc.Comments) {
		return nil
	}
	cfg, err := awsx.Config(ctx, cc.Region)
	if err != nil {
		return err
	}
	c := &report.CodeCommit{Client: codecommit.NewFromConfig(cfg)}
	_, err = c.UpsertComment(ctx, run, report.CodeCommitPR{Repository: in.Repo, BeforeCommit: pr.TargetCommit, AfterCommit: pr.SourceCommit})
	return classifyReport(err)
}

func (a *Activities) reportRun(ctx context.Context, in ReportInput) report.Run {
	run := report.Run{Repo: in.Repo, Commit: in.Commit, Pipeline: in.Pipeline, RunID: in.RunID,
		URL: RunURL(a.UIURL, activity.GetInfo(ctx).WorkflowNamespace, in.RunID), Outcome: in.Outcome,
		PR: prNumber(in.Event), Tests: in.Tests}
	for _, s := range in.Stages {
		run.Stages = append(run.Stages, report.Stage{Name: s.Name, State: s.State, Duration: s.Duration, Error: s.Error})
		if s.State == "failed" {
			run.LogTail = s.Error
		}
	}
	return run
}

// RunURL links to a run's page in the Temporal Web UI at ui; empty without
// a UI.
func RunURL(ui, namespace, runID string) string {
	if ui == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", ui, url.PathEscape(namespace), url.PathEscape(runID))
}

// classifyReport makes the host's refusals permanent; rate limits and
// server errors stay retryable.
func classifyReport(err error) error {
	if errors.Is(err, report.ErrUnauthorized) || errors.Is(err, report.ErrNotFound) || errors.Is(err, report.ErrInvalid) {
		return permanent(ErrReportRefused, "%v", err)
	}
	return err
}
