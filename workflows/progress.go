package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/buildspec"
)

// Stage states reported by the progress query.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// Progress is what the progress query returns: the run's identity and each
// stage with its state, start and end.
type Progress struct {
	// RunID is the run's workflow ID.
	RunID    string `json:"run_id,omitempty"`
	Pipeline string `json:"pipeline"`
	Repo     string `json:"repo"`
	Ref      string `json:"ref"`
	Event    string `json:"event"`
	Commit   string `json:"commit,omitempty"`
	// Stage is the stage running now, or the last one that ran.
	Stage  string          `json:"stage,omitempty"`
	Stages []StageProgress `json:"stages"`
	// SupersededBy is the workflow ID of the newer run that cancelled this one.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Approvals are the run's approval gates, the one it waits at last.
	Approvals []ApprovalProgress `json:"approvals,omitempty"`
	// Distribution is each distribution target's state, once the stage starts.
	Distribution *DistributionProgress `json:"distribution,omitempty"`
	// ReportError is the last failure to report the run on its git host.
	ReportError string `json:"report_error,omitempty"`
	// Notified says, per channel, how telling people of the outcome went.
	Notified *activities.NotifyResult `json:"notified,omitempty"`
	// Tests are the build's test reports once it has ended, passed or
	// failed; reports and notifications show them.
	Tests []buildspec.ReportResult `json:"tests,omitempty"`
	// UI links to the run's page in the Temporal Web UI, when the worker
	// knows where that is.
	UI string `json:"ui,omitempty"`
	// Made is what the run has made so far.
	Made Made `json:"made,omitzero"`
}

// Made is what a run made: its AMI (baked, or reused from the run that
// baked and tested it), images and templates, and the runs its tested AMI
// and its images started. Distribution's copies are in Progress.Distribution.
type Made struct {
	AMIs       map[string]string        `json:"amis,omitempty"`
	Reused     bool                     `json:"reused,omitempty"`
	ReusedFrom string                   `json:"reused_from,omitempty"`
	Images     []activities.ImageResult `json:"images,omitempty"`
	Templates  []string                 `json:"templates,omitempty"`
	Triggered  []string                 `json:"triggered,omitempty"`
}

// StageProgress is one stage's state.
type StageProgress struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	Error string    `json:"error,omitempty"`
}

func newProgress(in PipelineInput, stages []string) Progress {
	p := Progress{
		Pipeline: in.Pipeline,
		Repo:     in.Event.Repo,
		Ref:      in.Event.RefLabel(),
		Event:    string(in.Event.Kind),
		Commit:   in.Event.Commit,
	}
	for _, s := range stages {
		p.Stages = append(p.Stages, StageProgress{Name: s, State: StatePending})
	}
	return p
}

// setStages lists the run's stages, all pending, once the plan names them.
func (p *Progress) setStages(names []string) {
	for _, n := range names {
		p.get(n)
	}
}

func (p *Progress) get(name string) *StageProgress {
	for i := range p.Stages {
		if p.Stages[i].Name == name {
			return &p.Stages[i]
		}
	}
	p.Stages = append(p.Stages, StageProgress{Name: name, State: StatePending})
	return &p.Stages[len(p.Stages)-1]
}

func (p *Progress) start(name string, now time.Time) {
	s := p.get(name)
	s.State, s.Start = StateRunning, now
	p.Stage = name
}

func (p *Progress) end(name string, now time.Time, err error) {
	s := p.get(name)
	s.End = now
	switch {
	case err == nil:
		s.State = StateSucceeded
	case temporal.IsCanceledError(err):
		s.State = StateCancelled
	default:
		s.State, s.Error = StateFailed, rootMessage(err)
	}
}

// rootMessage is what a person should read of a stage's error: the message
// of the outermost ApplicationError (kiln's own words, e.g. from
// awsx.Classify) rather than Temporal's wrapping of it or the AWS error it
// wraps, or else the innermost error's text. An ApplicationError's Error()
// appends its type and retryability, so its Message() is used.
func rootMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err.Error()
		}
		err = u.Unwrap()
	}
}

// failedTests are the test reports a failed build's BuildFailed error
// carries in its details; none for other errors, or for histories
// recorded before builds sent them.
func failedTests(err error) []buildspec.ReportResult {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrBuildFailed || !appErr.HasDetails() {
		return nil
	}
	var reports []buildspec.ReportResult
	if appErr.Details(&reports) != nil {
		return nil
	}
	return reports
}
