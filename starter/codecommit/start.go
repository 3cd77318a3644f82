package codecommit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/github"
)

// startTimeout bounds starting runs, well inside the 5 second timeout of an
// EventBridge API destination call. A call that times out is retried with the
// same event id, and the workflow ID makes the retry start nothing twice.
const startTimeout = 4 * time.Second

// start starts every pipeline the event triggers. It tries them all even when
// one fails, so a retry has less left to do.
//
// It is a copy of starter/github's unexported start loop, apart from the
// timeout; the two should become one shared helper.
func (h *Handler) start(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, ev event.Event) {
	pipelines := h.cfg.Match(ev)
	if len(pipelines) == 0 {
		reason := fmt.Sprintf("no pipeline of repo %s is triggered by %s", ev.Repo, describe(ev))
		log.Info().Str("reason", reason).Msg("codecommit event ignored")
		writeJSON(w, http.StatusAccepted, github.Response{Ignored: reason})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var resp github.Response
	var errs []error
	for _, p := range pipelines {
		id, dup, err := h.starter.StartRun(ctx, p, ev)
		plog := log.With().Str("pipeline", p.Name).Str("workflow_id", id).Logger()
		if err != nil {
			plog.Error().Err(err).Msg("starting run failed")
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name, err))
			continue
		}
		plog.Info().Bool("duplicate", dup).Msg("run started")
		resp.Started = append(resp.Started, github.StartedRun{Pipeline: p.Name, WorkflowID: id, Duplicate: dup})
	}
	if len(errs) > 0 {
		resp.Error = errors.Join(errs...).Error()
		writeJSON(w, http.StatusInternalServerError, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// describe names the event in the words of kiln.yaml triggers.
func describe(ev event.Event) string {
	switch {
	case ev.Kind == event.KindReview && ev.PullRequest != nil:
		return fmt.Sprintf("review of pull request #%d into %s", ev.PullRequest.Number, ev.PullRequest.TargetBranch)
	case ev.Kind == event.KindTag:
		return "tag " + ev.Tag
	default:
		return string(ev.Kind) + " " + ev.Branch
	}
}

// reject logs and answers an event that is refused or cannot be read.
func reject(w http.ResponseWriter, log zerolog.Logger, status int, reason string) {
	lvl := zerolog.InfoLevel
	switch {
	case status >= 500:
		lvl = zerolog.ErrorLevel
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		lvl = zerolog.WarnLevel
	}
	log.WithLevel(lvl).Int("status", status).Str("reason", reason).Msg("codecommit event rejected")
	writeJSON(w, status, github.Response{Error: reason})
}

// writeJSON answers with resp as JSON.
func writeJSON(w http.ResponseWriter, status int, resp github.Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
