// Package intake is what every git host's webhook endpoint shares: reading
// the body, finding the repository and its secret, starting the pipelines a
// delivery triggers, and answering. Each host's package keeps only its own
// authentication and the parsing of its payloads.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter"
)

// StartMatching starts every pipeline of cfg the event triggers and answers
// the delivery: 202 with the reason when none is, 200 with the runs started
// (a redelivery's marked duplicate), 503 with Retry-After when kiln is over
// capacity and started nothing it could not confirm, or 500 naming the
// pipelines whose start failed. It starts them all at once and answers when
// all are done, within timeout, so the host gets its answer in time; a start
// that failed is listed beside those that did not, and a retry has less
// left to do. Every intake (GitHub and Gitea webhooks, CodeCommit events)
// answers so.
func StartMatching(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, cfg *config.Config,
	runs RunStarter, ev event.Event, timeout time.Duration) {
	pipelines := cfg.Match(ev)
	if len(pipelines) == 0 {
		Ignore(w, log, fmt.Sprintf("no pipeline of repo %s is triggered by %s", ev.Repo, Describe(ev)))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		id  string
		dup bool
		err error
	}
	outcomes := make([]outcome, len(pipelines))
	var wg sync.WaitGroup
	for i, p := range pipelines {
		wg.Go(func() {
			o := &outcomes[i]
			o.id, o.dup, o.err = runs.StartRun(ctx, p, ev)
		})
	}
	wg.Wait()
	var resp Response
	var errs []error
	var busy *starter.Overloaded
	allBusy := true
	for i, o := range outcomes {
		p := pipelines[i]
		plog := log.With().Str("pipeline", p.Name).Str("workflow_id", o.id).Logger()
		if o.err != nil {
			var b *starter.Overloaded
			if errors.As(o.err, &b) {
				busy = b
				plog.Warn().Err(o.err).Msg("run not started: kiln is over capacity")
			} else {
				allBusy = false
				plog.Error().Err(o.err).Msg("starting run failed")
			}
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name, o.err))
			continue
		}
		plog.Info().Bool("duplicate", o.dup).Msg("run started")
		resp.Started = append(resp.Started, StartedRun{Pipeline: p.Name, WorkflowID: o.id, Duplicate: o.dup})
	}
	switch {
	case len(errs) == 0:
		WriteJSON(w, http.StatusOK, resp)
	case allBusy:
		resp.Error = errors.Join(errs...).Error()
		w.Header().Set("Retry-After", strconv.Itoa(int(busy.RetryAfter.Seconds())))
		WriteJSON(w, http.StatusServiceUnavailable, resp)
	default:
		resp.Error = errors.Join(errs...).Error()
		WriteJSON(w, http.StatusInternalServerError, resp)
	}
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

// Ignore logs and answers a delivery that starts nothing: 202 with why.
func Ignore(w http.ResponseWriter, log zerolog.Logger, reason string) {
	log.Info().Str("reason", reason).Msg("webhook ignored")
	WriteJSON(w, http.StatusAccepted, Response{Ignored: reason})
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
