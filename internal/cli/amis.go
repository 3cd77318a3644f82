package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/workflows"
)

// runAMIs lists the AMIs kiln made for a pipeline, or walks one AMI's
// lineage; `kiln amis prune` retires old ones. A worker does the AWS
// calls, with its credentials and the roles of kiln.yaml.
func runAMIs(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 && args[0] == "prune" {
		return runPrune(ctx, env, args[1:])
	}
	var t temporalFlags
	var pipeline, lineage, region string
	var asJSON bool
	fs := newFlags(env, "amis", "--pipeline NAME [--json] | --lineage AMI_ID --region REGION [--json] | prune --pipeline NAME [--dry-run]")
	fs.StringVar(&pipeline, "pipeline", "", "list every AMI kiln made for this pipeline, in every account and region")
	fs.StringVar(&lineage, "lineage", "", "show the chain of AMIs this one was built on, and those built on it")
	fs.StringVar(&region, "region", "", "the region of the --lineage AMI")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case (pipeline == "") == (lineage == ""):
		return &exitError{code: 2, err: errors.New("give --pipeline or --lineage")}
	case lineage != "" && region == "":
		return &exitError{code: 2, err: errors.New("--lineage needs the AMI's --region")}
	}
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	runs := &starter.Runs{Client: c, Log: env.Log}
	if lineage != "" {
		var out activities.Lineage
		if err := runs.Ask(ctx, client.StartWorkflowOptions{ID: "kiln-lineage/" + lineage + "/" + nonceID(),
			StaticSummary: "kiln amis --lineage " + lineage}, workflows.LineageWorkflowName,
			activities.LineageInput{AMI: lineage, Region: region}, &out); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(env.Stdout, out)
		}
		printLineage(env.Stdout, out)
		return nil
	}
	res, err := retention(ctx, runs, pipeline, true)
	if err != nil {
		return err
	}
	if asJSON {
		images := make([]ami.Image, len(res.Decisions))
		for i, d := range res.Decisions {
			images[i] = d.Image
		}
		return writeJSON(env.Stdout, images)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACCOUNT\tREGION\tAMI\tSTATE\tCREATED\tTEST\tCOMMIT\tREF\tPARENT")
	for _, d := range res.Decisions {
		im := d.Image
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", im.Account, im.Region, im.ID, state(im, res.At),
			im.Created.Format(time.DateTime), dash(im.Test), short(im.Commit), dash(im.Ref), dash(im.Parent))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return failedPlaces(env.Stderr, res)
}

// runPrune plans, or with --dry-run only shows, the pipeline's retention.
func runPrune(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var pipeline string
	var dryRun, asJSON bool
	fs := newFlags(env, "amis prune", "--pipeline NAME [--dry-run] [--json]")
	fs.StringVar(&pipeline, "pipeline", "", "the pipeline whose AMIs to retire")
	fs.BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if pipeline == "" {
		return &exitError{code: 2, err: errors.New("give --pipeline")}
	}
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := retention(ctx, &starter.Runs{Client: c, Log: env.Log}, pipeline, dryRun)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(env.Stdout, res)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTION\tAMI\tACCOUNT\tREGION\tAGE\tREASON")
	counts := map[string]int{}
	for _, d := range res.Decisions {
		counts[d.Action]++
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Action, d.Image.ID, d.Image.Account, d.Image.Region,
			age(res.At.Sub(d.Image.Created)), d.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, a := range []string{ami.ActionDeprecate, ami.ActionDisable, ami.ActionDelete, ami.ActionKeep} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", counts[a], a))
		}
	}
	verb := "retired " + fmt.Sprint(res.Retired)
	if dryRun {
		verb = "dry run: nothing changed"
	}
	fmt.Fprintf(env.Stderr, "kiln amis prune: %s: %s (%s)\n", pipeline, verb, strings.Join(parts, ", "))
	return failedPlaces(env.Stderr, res)
}

// retention runs the pipeline's Retention workflow and waits for it.
func retention(ctx context.Context, runs *starter.Runs, pipeline string, dryRun bool) (*workflows.RetentionResult, error) {
	what := "prune"
	if dryRun {
		what = "plan"
	}
	var res workflows.RetentionResult
	err := runs.Ask(ctx, client.StartWorkflowOptions{ID: workflows.RetentionWorkflowID(pipeline) + "/" + what + "-" + nonceID(),
		StaticSummary: "kiln amis " + what + " " + pipeline}, workflows.RetentionWorkflowName,
		workflows.RetentionInput{Pipeline: pipeline, DryRun: dryRun}, &res)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// failedPlaces names the places retention could not read or change, and
// makes the command fail.
func failedPlaces(w io.Writer, res *workflows.RetentionResult) error {
	if len(res.Failed) == 0 {
		return nil
	}
	for _, p := range slices.Sorted(maps.Keys(res.Failed)) {
		fmt.Fprintf(w, "kiln amis: %s: %s\n", p, res.Failed[p])
	}
	return errors.New(fmt.Sprint(len(res.Failed), " place(s) failed; the next run tries them again"))
}

func printLineage(w io.Writer, l activities.Lineage) {
	line := func(depth int, mark string, im ami.Image) {
		fmt.Fprintf(w, "%s%s%s  %s  %s  %s  commit %s  run %s\n", strings.Repeat("   ", depth), mark, im.ID, im.Region,
			dash(im.Pipeline), dash(im.Test), short(im.Commit), dash(im.Run))
	}
	depth := 0
	for _, a := range l.Ancestors {
		line(depth, "", a)
		depth++
	}
	line(depth, "* ", l.Image)
	depthOf := map[string]int{l.Image.ID: depth}
	for _, d := range l.Descendants {
		depthOf[d.ID] = depthOf[d.Parent] + 1
		line(depthOf[d.ID], "└─ ", d)
	}
}

func state(im ami.Image, now time.Time) string {
	if !im.Deprecated.IsZero() && !im.Deprecated.After(now) && im.State == "available" {
		return "deprecated"
	}
	return im.State
}

func age(d time.Duration) string {
	if d >= 24*time.Hour {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.Round(time.Minute).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return dash(commit)
}

// nonceID is 16 random hex digits, for the workflow IDs of CLI requests.
func nonceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
