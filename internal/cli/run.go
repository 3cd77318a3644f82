package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kiln-ci/kiln/activities"

	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/workflows"
)

// runRun starts an on-demand run and, with --wait, follows it to the end.
func runRun(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var pipeline, ref, commit string
	var wait, force, asJSON bool
	fs := newFlags(env, "run", "--pipeline NAME --ref REF [--commit SHA] [--force] [--wait]")
	fs.StringVar(&pipeline, "pipeline", "", "pipeline to run (required)")
	fs.StringVar(&ref, "ref", "", "branch, tag or full ref to build (required)")
	fs.StringVar(&commit, "commit", "", "exact commit SHA; default: the ref's head when kiln run checks the run")
	fs.BoolVar(&wait, "wait", false, "follow the run's stages and exit non-zero if it fails")
	fs.BoolVar(&force, "force", false, "bake again even if an AMI of this commit already passed its test")
	fs.BoolVar(&asJSON, "json", false, "print the run's ID, and with --wait how it ended and what it made, as JSON on stdout")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if pipeline == "" || ref == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--pipeline and --ref are required")}
	}
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	runs, m := &starter.Runs{Client: c}, starter.ManualRun{Pipeline: pipeline, Ref: ref, Commit: commit, Force: force}
	// A worker plans the run first, so a typo starts nothing and the
	// error names what exists.
	plan, err := runs.Check(ctx, m)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s; no run was started", plain(err))}
	}
	// The run builds the commit the check found, and names it and its
	// repository from the start. HEAD stays a ref: its plan learns the
	// default branch's name.
	m.Repo = plan.Repo
	if m.Commit == "" && ref != "HEAD" {
		m.Commit = plan.Commit
	}
	id, err := runs.Start(ctx, m)
	if err != nil {
		return err
	}
	if !wait {
		if asJSON {
			return printJSON(env.Stdout, RunOutcome{WorkflowID: id, Outcome: "started"})
		}
		fmt.Fprintln(env.Stdout, id)
		return nil
	}
	if !asJSON {
		fmt.Fprintln(env.Stdout, id)
	}
	return follow(ctx, c, id, env, asJSON)
}

// follow prints each stage change of a run to stderr until it ends, then
// what the run made and where to see it (on stdout as JSON with asJSON);
// a failed or cancelled run is an error with exit code 1.
func follow(ctx context.Context, c client.Client, id string, env *Env, asJSON bool) error {
	out := env.Stderr
	run := c.GetWorkflow(ctx, id, "")
	done := make(chan error, 1)
	var res workflows.PipelineResult
	go func() { done <- run.Get(ctx, &res) }()
	seen := map[string]string{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				// A failed run returns no result, but a closed run still answers
				// queries; without this a run that fails between two ticks
				// would end without saying which stage failed.
				if p, qerr := queryProgress(ctx, c, id); qerr == nil {
					res.Progress = p
				}
			}
			printProgress(out, seen, res.Progress)
			o := outcomeOf(id, res.Progress, err)
			if o.Outcome == workflows.OutcomeSucceeded {
				fmt.Fprintf(out, "run %s succeeded\n", id)
			}
			printSummary(out, o)
			if asJSON {
				if jerr := printJSON(env.Stdout, o); jerr != nil {
					return jerr
				}
			}
			switch {
			case err != nil:
				return &exitError{code: 1, err: runFailed(id, res.Progress, err)}
			case o.Outcome == workflows.OutcomeNotApproved:
				return &exitError{code: 1, err: fmt.Errorf("run %s was not approved", id)}
			}
			return nil
		case <-tick.C:
			if p, err := queryProgress(ctx, c, id); err == nil {
				printProgress(out, seen, p)
			}
			if step := heartbeatStep(ctx, c, id); step != "" && step != seen["\x00step"] {
				seen["\x00step"] = step
				fmt.Fprintln(out, "           "+step)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runFailed says that run id failed. When a stage's line already printed
// the cause, it names the stage only, so the cause is printed once.
func runFailed(id string, p workflows.Progress, err error) error {
	for _, s := range p.Stages {
		if s.Error != "" {
			return fmt.Errorf("run %s failed at %s", id, s.Name)
		}
	}
	return fmt.Errorf("run %s failed: %s", id, plain(err))
}

// heartbeatStep describes where the running stage is, from the last heartbeat
// of its pending activity, e.g. "build: phase pre_build, command 2".
func heartbeatStep(ctx context.Context, c client.Client, id string) string {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ""
	}
	for _, pa := range d.GetPendingActivities() {
		var p activities.BuildProgress
		if pa.GetHeartbeatDetails() == nil || converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p) != nil {
			continue
		}
		if p.Phase != "" {
			return fmt.Sprintf("%s: phase %s, command %d", pa.GetActivityType().GetName(), p.Phase, p.Command)
		}
		return fmt.Sprintf("%s: %s", pa.GetActivityType().GetName(), p.Step)
	}
	return ""
}

func queryProgress(ctx context.Context, c client.Client, id string) (workflows.Progress, error) {
	var p workflows.Progress
	v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
	if err == nil {
		err = v.Get(&p)
	}
	return p, err
}

// printProgress prints the stages whose state changed since the last call,
// each distribution target's under the distribute stage, before the next
// stage's line.
func printProgress(out io.Writer, seen map[string]string, p workflows.Progress) {
	for _, s := range p.Stages {
		if seen[s.Name] != s.State {
			printStage(out, seen, s)
		}
		if s.Name == workflows.StageDistribute {
			printTargets(out, seen, p)
		}
	}
	printTargets(out, seen, p)
}

// printStage prints a stage's new state.
func printStage(out io.Writer, seen map[string]string, s workflows.StageProgress) {
	seen[s.Name] = s.State
	line := fmt.Sprintf("%-10s %s", s.Name, s.State)
	if !s.End.IsZero() && !s.Start.IsZero() {
		line += fmt.Sprintf(" (%s)", s.End.Sub(s.Start).Round(100*time.Millisecond))
	}
	if s.Error != "" {
		line += ": " + s.Error
	}
	fmt.Fprintln(out, line)
}

// printTargets prints the distribution targets whose state changed, and says
// how to retry when the run waits for it.
func printTargets(out io.Writer, seen map[string]string, p workflows.Progress) {
	d := p.Distribution
	if d == nil {
		return
	}
	for _, t := range d.Targets {
		key := "\x00target " + t.Account + "/" + t.Region + " " + t.Mode
		state := fmt.Sprintf("%s %d", t.State, t.Generation)
		if seen[key] == state {
			continue
		}
		seen[key] = state
		line := fmt.Sprintf("  %s %s %s", targetLabel(t), t.Mode, t.State)
		switch {
		case t.Error != "":
			line += ": " + t.Error
		case t.AMI != "":
			line += " " + t.AMI
		}
		fmt.Fprintln(out, line)
	}
	waiting := fmt.Sprint(d.WaitingForRetry, d.Retries)
	if d.WaitingForRetry && seen["\x00waiting"] != waiting {
		fmt.Fprintf(out, "%-10s waiting for retry until %s: fix the failed targets, then run kiln retry %s\n",
			workflows.StageDistribute, d.RetryDeadline.Local().Format(time.DateTime), p.RunID)
	}
	seen["\x00waiting"] = waiting
}

// targetLabel names a distribution target: account/region, or the region
// alone for the regional copy that shares in that region are made from,
// which belongs to no target account.
func targetLabel(t workflows.TargetProgress) string {
	if t.Account == "" {
		return t.Region
	}
	return t.Account + "/" + t.Region
}
