package intake

import (
	"context"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// RunStarter starts a pipeline run durably. It returns the workflow ID, and
// alreadyStarted=true when a run with this ID exists (a redelivery).
type RunStarter interface {
	StartRun(ctx context.Context, p *config.Pipeline, ev event.Event) (workflowID string, alreadyStarted bool, err error)
}

// Response is the JSON body of every answer the handler gives. Exactly one of
// Pong, Ignored, Error or Started is meaningful, except that a failed start
// reports the runs that did start beside the error.
type Response struct {
	Pong    bool         `json:"pong,omitempty"`
	Ignored string       `json:"ignored,omitempty"`
	Error   string       `json:"error,omitempty"`
	Started []StartedRun `json:"started,omitempty"`
	// Approved lists the runs a "/kiln approve" comment approved.
	Approved []string `json:"approved,omitempty"`
}

// StartedRun reports one pipeline run started, or found already started, for a delivery.
type StartedRun struct {
	Pipeline   string `json:"pipeline"`
	WorkflowID string `json:"workflow_id"`
	// Duplicate is true when the run already existed: the delivery was redelivered.
	Duplicate bool `json:"duplicate,omitempty"`
}
