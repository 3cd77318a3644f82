// Package codecommit is kiln's intake for AWS CodeCommit: an Amazon
// EventBridge rule matches the repository's events and an API destination
// POSTs each one, as EventBridge event JSON, to /hooks/codecommit. The
// handler checks the repository and its token, translates the event into an
// event.Event, and starts the pipelines it triggers, as starter/github does
// for webhooks.
//
// EventBridge cannot sign a request. Its API destination connection sends a
// fixed API-key header instead; kiln wants X-Kiln-Token set to the
// repository's webhook_secret, and compares it in constant time.
package codecommit

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/starter/intake"
)

// MaxBodyBytes bounds a request body. EventBridge events are at most 256 KiB;
// anything much larger is not from EventBridge.
const MaxBodyBytes = 1 << 20

// TokenHeader is the header the API destination connection sends, set to the
// repository's webhook_secret.
const TokenHeader = "X-Kiln-Token"

// Handler is the http.Handler for CodeCommit events from EventBridge. It
// accepts events only for repositories kiln.yaml marks codecommit, carrying
// their token.
type Handler struct {
	cfg     *config.Config
	secrets map[string][]byte
	starter intake.RunStarter
	log     zerolog.Logger
}

// NewHandler returns a Handler for the CodeCommit repositories and pipelines
// of cfg. secrets holds each repository's webhook secret keyed by lower-cased
// name, as config.Config.WebhookSecrets returns them.
func NewHandler(cfg *config.Config, secrets map[string][]byte, starter intake.RunStarter, log zerolog.Logger) *Handler {
	return &Handler{cfg: cfg, secrets: secrets, starter: starter, log: log}
}

// ServeHTTP takes one event: it checks method, size, shape, repository and
// token, in that order, then starts the pipelines the event triggers. Answers
// are intake.Response JSON, as the GitHub intake gives.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reject(w, h.log, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; events are POSTed")
		return
	}
	env, status, err := h.readEvent(w, r)
	log := h.log
	if env != nil {
		log = log.With().Str("delivery", env.ID).Str("detail_type", env.DetailType).Str("repo", env.RepoName()).Logger()
	}
	if err != nil {
		reject(w, log, status, err.Error())
		return
	}
	ev, ignored, err := Normalize(env)
	switch {
	case err != nil:
		reject(w, log, http.StatusBadRequest, err.Error())
	case ignored != "":
		log.Info().Str("reason", ignored).Msg("codecommit event ignored")
		writeJSON(w, http.StatusAccepted, intake.Response{Ignored: ignored})
	default:
		h.start(r.Context(), w, log.With().Str("ref", ev.Ref).Logger(), ev)
	}
}

// readEvent reads the body, finds its repository, and checks the token
// against that repository's secret. On failure it returns the status to
// answer with, and the event when it could be parsed, for the log.
func (h *Handler) readEvent(w http.ResponseWriter, r *http.Request) (*Envelope, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", MaxBodyBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	env, err := ParseEnvelope(body)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	name := env.RepoName()
	if name == "" {
		return env, http.StatusForbidden, errors.New("unknown repository: the event names none")
	}
	if err := h.knownRepo(name, env.Region); err != nil {
		return env, http.StatusForbidden, err
	}
	secret := h.secrets[strings.ToLower(name)]
	if len(secret) == 0 {
		// kiln refuses to start without secrets, so this is a wiring bug; an
		// empty secret would make an empty token check out.
		return env, http.StatusInternalServerError, fmt.Errorf("repository %q has no webhook secret loaded", name)
	}
	if err := intake.CheckToken(r.Header, TokenHeader, secret); err != nil {
		return env, http.StatusUnauthorized, err
	}
	return env, 0, nil
}

// knownRepo checks that kiln.yaml lists the repository as a CodeCommit one in
// the event's region. Names compare as config.Config.Repo compares them,
// ignoring case, although CodeCommit's are case-sensitive.
func (h *Handler) knownRepo(name, region string) error {
	repo := h.cfg.Repo(name)
	switch {
	case repo == nil:
		return fmt.Errorf("unknown repository %q: not in kiln.yaml repos", name)
	case repo.CodeCommit == nil:
		return fmt.Errorf("unknown repository %q: kiln.yaml does not mark it codecommit", name)
	case repo.CodeCommit.Region != "" && region != repo.CodeCommit.Region:
		return fmt.Errorf("unknown repository %q in region %q: kiln.yaml has it in %q", name, region, repo.CodeCommit.Region)
	}
	return nil
}
