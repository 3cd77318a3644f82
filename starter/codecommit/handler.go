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
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// MaxBodyBytes bounds a request body. EventBridge events are at most 256 KiB;
// anything much larger is not from EventBridge.
const MaxBodyBytes = 1 << 20

// TokenHeader is the header the API destination connection sends, set to the
// repository's webhook_secret.
const TokenHeader = "X-Kiln-Token"

// NewHandler returns the handler of CodeCommit events for the CodeCommit
// repositories and pipelines of cfg: intake's, over Host. secrets holds
// each repository's webhook secret keyed by lower-cased name, as
// config.Config.WebhookSecrets returns them.
func NewHandler(cfg *config.Config, secrets map[string][]byte, starter intake.RunStarter, log zerolog.Logger) *intake.Handler {
	return intake.NewHandler(Host{}, cfg, secrets, starter, log)
}

// Host is what EventBridge's CodeCommit events are: an envelope that
// carries their ID, a token header for a signature, and repositories that
// kiln.yaml marks codecommit, in a region.
type Host struct{}

var (
	_ intake.Host        = Host{}
	_ intake.Limited     = Host{}
	_ intake.RepoChecker = Host{}
	_ intake.Identifier  = Host{}
)

// Name is "codecommit".
func (Host) Name() string { return "codecommit" }

// Headers: EventBridge's event type and ID are in the envelope.
func (Host) Headers(http.Header) (string, string, error) { return "", "", nil }

// Identify reads the envelope's detail type and event ID, for the log.
func (Host) Identify(payload []byte) (string, string) {
	env, err := ParseEnvelope(payload)
	if err != nil {
		return "", ""
	}
	return env.DetailType, env.ID
}

// Limits are EventBridge's: events of at most 256 KiB, and an answer
// within the API destination's 5 seconds.
func (Host) Limits() (int64, time.Duration) { return MaxBodyBytes, startTimeout }

// Repo reads the envelope's repository.
func (Host) Repo(payload []byte) (string, error) {
	env, err := ParseEnvelope(payload)
	if err != nil {
		return "", err
	}
	return env.RepoName(), nil
}

// CheckRepo checks that kiln.yaml marks the repository codecommit, in the
// event's region.
func (Host) CheckRepo(repo *config.Repo, payload []byte) error {
	env, err := ParseEnvelope(payload)
	if err != nil {
		return err
	}
	switch cc := repo.CodeCommit; {
	case cc == nil:
		return fmt.Errorf("unknown repo %q: kiln.yaml does not mark it codecommit", repo.Name)
	case cc.Region != "" && env.Region != cc.Region:
		return fmt.Errorf("unknown repo %q in region %q: kiln.yaml has it in %q", repo.Name, env.Region, cc.Region)
	}
	return nil
}

// Authenticate checks the API destination's token header.
func (Host) Authenticate(h http.Header, _, secret []byte) error {
	return intake.CheckToken(h, TokenHeader, secret)
}

// Normalize turns an event into the run it may start, or says why it
// starts nothing.
func (Host) Normalize(_, _ string, payload []byte) ([]event.Event, string, error) {
	env, err := ParseEnvelope(payload)
	if err != nil {
		return nil, "", err
	}
	ev, ignored, err := Normalize(env)
	if err != nil || ignored != "" {
		return nil, ignored, err
	}
	return []event.Event{ev}, "", nil
}
