package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ci/kiln/activities"
)

// What the Web UI shows of a run. Temporal keeps an activity's summary in
// its scheduling event and a run's current details in memory, answering a
// query for them: neither is a command, so neither changes what a replay
// must match.

// summarized names the activities ctx schedules, so each bar of the
// timeline says what it is ("copy 222222222222/eu-west-1").
func summarized(ctx workflow.Context, summary string) workflow.Context {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return workflow.WithActivityOptions(ctx, o)
}

// shortSHA is a commit as people read it.
func shortSHA(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// reportSummary names one report on the git host.
func reportSummary(in activities.ReportInput) string {
	if in.Outcome != "" {
		return "report the run " + in.Outcome
	}
	return "report " + strings.Join(in.Changed, ", ")
}

// showDetails sets the run's current details, the Web UI's Details tab:
// its stages as a table, then what it made so far.
func (r *pipelineRun) showDetails(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, r.details())
}

// details renders the run in markdown.
func (r *pipelineRun) details() string {
	var b strings.Builder
	b.WriteString("| stage | state | took |\n| --- | --- | --- |\n")
	for _, s := range r.progress.Stages {
		took := ""
		if !s.Start.IsZero() && !s.End.IsZero() {
			took = s.End.Sub(s.Start).Round(100 * time.Millisecond).String()
		}
		state := s.State
		if s.Error != "" {
			state += ": " + MarkdownCode(firstLine(s.Error))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Name, state, took)
	}
	made := r.progress.Made
	// A map's own order is random, and a workflow's output must not be.
	for _, region := range slices.Sorted(maps.Keys(made.AMIs)) {
		fmt.Fprintf(&b, "\n**AMI** %s in %s", made.AMIs[region], region)
		if made.Reused {
			b.WriteString(", reused: it passed its test in an earlier run of this commit")
			if made.ReusedFrom != "" {
				fmt.Fprintf(&b, " (%s)", MarkdownCode(made.ReusedFrom))
			}
		}
		b.WriteString("\n")
	}
	if d := r.progress.Distribution; d != nil && len(d.Targets) > 0 {
		b.WriteString("\n| account | region | mode | state | AMI |\n| --- | --- | --- | --- | --- |\n")
		for _, t := range d.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Account, t.Region, t.Mode, t.State, t.AMI)
		}
	}
	for _, img := range made.Images {
		fmt.Fprintf(&b, "\n**image** %s, tags %s\n", MarkdownCode(img.Name+"@"+img.Digest), MarkdownCode(strings.Join(img.Tags, ", ")))
	}
	for _, t := range made.Templates {
		fmt.Fprintf(&b, "\n**template** %s\n", MarkdownCode(t))
	}
	for _, id := range made.Triggered {
		fmt.Fprintf(&b, "\n**started** %s\n", MarkdownCode(id))
	}
	return b.String()
}

// noteMade copies what the run's stages made into its progress, for the
// progress query, the Web UI and the CLI's closing summary.
func (r *pipelineRun) noteMade() {
	res, made := r.res, &r.progress.Made
	if res == nil {
		return
	}
	if res.Bake != nil {
		made.AMIs, made.Reused, made.ReusedFrom = res.Bake.AMIs, res.Bake.Reused, res.Bake.ReusedFrom
	}
	made.Triggered = append([]string(nil), res.Triggered...)
	if p := res.Publish; p != nil {
		made.Images, made.Templates = p.Images, p.Templates
		made.Triggered = append(made.Triggered, p.Triggered...)
	}
	slices.Sort(made.Triggered)
}

// firstLine is a message's first line.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// MarkdownCode puts text from outside kiln (a ref, a login, a build's
// output) into markdown as an inline code span of one table cell, where
// the Web UI renders no link, HTML or emphasis of it.
func MarkdownCode(s string) string {
	s = strings.NewReplacer("`", "'", "|", `\|`, "\n", " ", "\r", " ").Replace(s)
	return "`" + s + "`"
}

// stageFailure is a failed run's error as the Web UI heads it: the stage,
// then the cause in kiln's words, rather than "activity error". The cause
// stays wrapped, with its type, so errors.As and the failure's type still
// find it.
func stageFailure(stage string, err error) error {
	if stage == "" {
		stage = StagePlan
	}
	var appErr *temporal.ApplicationError
	typ := ""
	if errors.As(err, &appErr) {
		typ = appErr.Type()
	}
	return temporal.NewApplicationErrorWithOptions(stage+": "+rootMessage(err), typ,
		temporal.ApplicationErrorOptions{NonRetryable: true, Cause: err})
}
