package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// StartMatching starts every pipeline of cfg the event triggers and answers
// the delivery: 202 with the reason when none is, 200 with the runs started
// (a redelivery's marked duplicate), or 500 naming the pipelines whose start
// failed. It tries them all even when one fails, so a retry has less left to
// do, and gives up after timeout so the host gets its answer in time.
// Every intake (GitHub and Gitea webhooks, CodeCommit events) answers so.
func StartMatching(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, cfg *config.Config,
	starter RunStarter, ev event.Event, timeout time.Duration) {
	pipelines := cfg.Match(ev)
	if len(pipelines) == 0 {
		reason := fmt.Sprintf("no pipeline of repo %s is triggered by %s", ev.Repo, Describe(ev))
		log.Info().Str("reason", reason).Msg("webhook ignored")
		WriteJSON(w, http.StatusAccepted, Response{Ignored: reason})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var resp Response
	var errs []error
	for _, p := range pipelines {
		id, dup, err := starter.StartRun(ctx, p, ev)
		plog := log.With().Str("pipeline", p.Name).Str("workflow_id", id).Logger()
		if err != nil {
			plog.Error().Err(err).Msg("starting run failed")
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name, err))
			continue
		}
		plog.Info().Bool("duplicate", dup).Msg("run started")
		resp.Started = append(resp.Started, StartedRun{Pipeline: p.Name, WorkflowID: id, Duplicate: dup})
	}
	if len(errs) > 0 {
		resp.Error = errors.Join(errs...).Error()
		WriteJSON(w, http.StatusInternalServerError, resp)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}

// Describe names the event in the words of kiln.yaml triggers.
func Describe(ev event.Event) string {
	switch {
	case ev.Kind == event.KindReview && ev.PullRequest != nil:
		return fmt.Sprintf("review of pull request #%d into %s", ev.PullRequest.Number, ev.PullRequest.TargetBranch)
	case ev.Kind == event.KindTag:
		return "tag " + ev.Tag
	default:
		return string(ev.Kind) + " " + ev.Branch
	}
}

// Reject logs and answers a delivery that is refused or cannot be read:
// refusals (401, 403) at warning level, kiln's own failures at error level.
func Reject(w http.ResponseWriter, log zerolog.Logger, status int, reason string) {
	lvl := zerolog.InfoLevel
	switch {
	case status >= 500:
		lvl = zerolog.ErrorLevel
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		lvl = zerolog.WarnLevel
	}
	log.WithLevel(lvl).Int("status", status).Str("reason", reason).Msg("webhook rejected")
	WriteJSON(w, status, Response{Error: reason})
}

// WriteJSON answers with resp as JSON.
func WriteJSON(w http.ResponseWriter, status int, resp Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
