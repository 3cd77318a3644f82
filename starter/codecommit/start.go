package codecommit

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// startTimeout bounds starting runs, well inside the 5 second timeout of an
// EventBridge API destination call. A call that times out is retried with the
// same event id, and the workflow ID makes the retry start nothing twice.
const startTimeout = 4 * time.Second

// start starts every pipeline the event triggers and answers, as every
// intake does.
func (h *Handler) start(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, ev event.Event) {
	intake.StartMatching(ctx, w, log, h.cfg, h.starter, ev, startTimeout)
}

// reject logs and answers an event that is refused or cannot be read.
func reject(w http.ResponseWriter, log zerolog.Logger, status int, reason string) {
	intake.Reject(w, log, status, reason)
}

// writeJSON answers with resp as JSON.
func writeJSON(w http.ResponseWriter, status int, resp intake.Response) {
	intake.WriteJSON(w, status, resp)
}
