package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// MaxBodyBytes bounds a webhook body: every intake's bound, as GitHub caps
// payloads at 25 MiB.
const MaxBodyBytes = intake.MaxBodyBytes

// errNoRepository: the delivery names no repository, as an organization's
// or a GitHub App's hook sends.
var errNoRepository = errors.New("payload names no repository")

// The intake's shared types, under the names this package has always used.
type (
	RunStarter = intake.RunStarter
	Response   = intake.Response
	StartedRun = intake.StartedRun
)

// Handler is the http.Handler for GitHub and Gitea webhooks. It accepts
// deliveries only from allowlisted repositories, signed with their secret.
type Handler struct {
	cfg     *config.Config
	secrets map[string][]byte
	starter RunStarter
	log     zerolog.Logger
}

// NewHandler returns a Handler for the repositories and pipelines of cfg.
// secrets holds each repository's webhook secret keyed by lower-cased full
// name, as config.Config.WebhookSecrets returns them.
func NewHandler(cfg *config.Config, secrets map[string][]byte, starter RunStarter, log zerolog.Logger) *Handler {
	return &Handler{cfg: cfg, secrets: secrets, starter: starter, log: log}
}

// ServeHTTP takes one delivery: it checks method, headers, size, repository and
// signature, in that order, then starts the pipelines the event triggers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, h.log, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; webhooks are POSTed")
		return
	}
	eventType := firstHeader(r.Header, "X-GitHub-Event", "X-Gitea-Event")
	deliveryID := firstHeader(r.Header, "X-GitHub-Delivery", "X-Gitea-Delivery")
	log := h.log.With().Str("event", eventType).Str("delivery", deliveryID).Logger()
	switch {
	case eventType == "":
		h.reject(w, log, http.StatusBadRequest, "missing X-GitHub-Event header")
		return
	case deliveryID == "":
		h.reject(w, log, http.StatusBadRequest, "missing X-GitHub-Delivery header")
		return
	}
	d, status, err := h.readDelivery(w, r)
	if errors.Is(err, errNoRepository) {
		// An organization's or a GitHub App's hook: its ping is welcome,
		// and nothing it sends names a repository kiln could build.
		if eventType == "ping" {
			log.Info().Msg("webhook ping without a repository")
			intake.WriteJSON(w, http.StatusOK, Response{Pong: true})
			return
		}
		intake.Ignore(w, log, fmt.Sprintf("%s names no repository; kiln starts runs only for the repositories in kiln.yaml", eventType))
		return
	}
	if err != nil {
		h.reject(w, log.With().Str("repo", d.repo).Logger(), status, err.Error())
		return
	}
	log = log.With().Str("repo", d.repo).Logger()
	if eventType == "issue_comment" {
		h.comment(r.Context(), w, log, d.repo, d.payload)
		return
	}
	ev, ignored, err := Normalize(eventType, deliveryID, d.payload)
	switch {
	case err != nil:
		h.reject(w, log, http.StatusBadRequest, err.Error())
	case ignored == ReasonPing:
		log.Info().Msg("webhook ping")
		intake.WriteJSON(w, http.StatusOK, Response{Pong: true})
	case ignored != "":
		intake.Ignore(w, log, ignored)
	default:
		h.start(r.Context(), w, log.With().Str("ref", ev.Ref).Logger(), ev)
	}
}

// readDelivery reads the body, finds its repository, and verifies the
// signature with that repository's secret. On failure it returns the status to
// answer with.
func (h *Handler) readDelivery(w http.ResponseWriter, r *http.Request) (delivery, int, error) {
	body, err := readBody(w, r)
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return delivery{}, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", MaxBodyBytes)
		}
		return delivery{}, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	d, err := parseDelivery(r.Header.Get("Content-Type"), body)
	switch {
	case err != nil:
		return d, http.StatusBadRequest, err
	case d.repo == "":
		return d, http.StatusAccepted, errNoRepository
	case h.cfg.Repo(d.repo) == nil:
		return d, http.StatusForbidden, fmt.Errorf("unknown repo %q: not in kiln.yaml repos", d.repo)
	}
	secret := h.secrets[strings.ToLower(d.repo)]
	if len(secret) == 0 {
		// kiln refuses to start without secrets, so this is a wiring bug; an
		// empty key would make any sender's signature check out.
		return d, http.StatusInternalServerError, fmt.Errorf("repo %q has no webhook secret loaded", d.repo)
	}
	if err := verifySignature(r.Header, secret, d.signed()...); err != nil {
		return d, http.StatusUnauthorized, err
	}
	return d, 0, nil
}

func (h *Handler) start(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, ev event.Event) {
	intake.StartMatching(ctx, w, log, h.cfg, h.starter, ev, intake.StartTimeout)
}

// reject logs and answers a delivery that is refused or cannot be read.
func (h *Handler) reject(w http.ResponseWriter, log zerolog.Logger, status int, reason string) {
	intake.Reject(w, log, status, reason)
}

// firstHeader returns the first of the named headers that is set.
func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}
