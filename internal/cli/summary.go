package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/workflows"
)

// RunOutcome is how a run ended and what it made: the closing summary of
// `kiln run --wait` and `kiln watch`, and their --json.
type RunOutcome struct {
	WorkflowID string `json:"workflow_id"`
	// Outcome is succeeded, failed, cancelled or not approved.
	Outcome string `json:"outcome"`
	// Stage and Cause say where and why a run failed.
	Stage  string `json:"stage,omitempty"`
	Cause  string `json:"cause,omitempty"`
	Commit string `json:"commit,omitempty"`
	// AMIs are the bake's by region; ReusedFrom names the run that baked
	// and tested them when the run reused them.
	AMIs       map[string]string            `json:"amis,omitempty"`
	Reused     bool                         `json:"reused,omitempty"`
	ReusedFrom string                       `json:"reused_from,omitempty"`
	Copies     []workflows.TargetProgress   `json:"copies,omitempty"`
	Images     []activities.ImageResult     `json:"images,omitempty"`
	Templates  []string                     `json:"templates,omitempty"`
	Triggered  []string                     `json:"triggered,omitempty"`
	Approvals  []workflows.ApprovalProgress `json:"approvals,omitempty"`
	UI         string                       `json:"ui,omitempty"`
}

// outcomeOf reads a run's outcome from its last progress and the error its
// end returned.
func outcomeOf(id string, p workflows.Progress, err error) RunOutcome {
	o := RunOutcome{WorkflowID: id, Outcome: workflows.OutcomeSucceeded, Commit: p.Commit, UI: p.UI,
		AMIs: p.Made.AMIs, Reused: p.Made.Reused, ReusedFrom: p.Made.ReusedFrom,
		Images: p.Made.Images, Templates: p.Made.Templates, Triggered: p.Made.Triggered, Approvals: p.Approvals}
	if d := p.Distribution; d != nil {
		o.Copies = d.Targets
	}
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &canceled):
		o.Outcome, o.Cause = workflows.OutcomeCancelled, plain(err)
	case err != nil:
		o.Outcome, o.Stage, o.Cause = workflows.OutcomeFailed, p.Stage, plain(err)
	default:
		for _, a := range p.Approvals {
			if !a.Approved && (a.Decision != nil || a.TimedOut) {
				o.Outcome = workflows.OutcomeNotApproved
			}
		}
	}
	return o
}

// printSummary writes what the run made and where to see it, under its
// stages' lines.
func printSummary(out io.Writer, o RunOutcome) {
	row := func(k, format string, args ...any) { fmt.Fprintf(out, "  %-10s %s\n", k, fmt.Sprintf(format, args...)) }
	if o.Commit != "" {
		row("commit", "%s", o.Commit)
	}
	for _, r := range slices.Sorted(maps.Keys(o.AMIs)) {
		switch {
		case o.Reused && o.ReusedFrom != "":
			row("AMI", "reused %s in %s (tested in run %s)", o.AMIs[r], r, o.ReusedFrom)
		case o.Reused:
			row("AMI", "reused %s in %s (it passed its test before)", o.AMIs[r], r)
		default:
			row("AMI", "%s in %s", o.AMIs[r], r)
		}
	}
	for _, t := range o.Copies {
		switch {
		case t.AMI == "":
		case t.Account == "":
			row("copy", "%s %s (in the builder's account, for the shares there)", t.Region, t.AMI)
		default:
			row(t.Mode, "%s %s", targetLabel(t), t.AMI)
		}
	}
	for _, img := range o.Images {
		row("image", "%s@%s (tags %s)", img.Name, img.Digest, strings.Join(img.Tags, ", "))
	}
	for _, t := range o.Templates {
		row("template", "%s", t)
	}
	for _, id := range o.Triggered {
		row("started", "%s", id)
	}
	for _, a := range o.Approvals {
		if a.Decision == nil {
			continue
		}
		verb := "approved"
		if !a.Approved {
			verb = "rejected"
		}
		row(verb, "%s by %s via %s", a.Stage, a.Decision.By, a.Decision.Via)
	}
	if o.UI != "" {
		row("web UI", "%s", o.UI)
	}
}

// printJSON writes o for scripts.
func printJSON(out io.Writer, o RunOutcome) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}
