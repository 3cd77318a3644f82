package github

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter/intake"
)

// MaxBodyBytes bounds a webhook body: every intake's bound, as GitHub caps
// payloads at 25 MiB.
const MaxBodyBytes = intake.MaxBodyBytes

// The intake's shared types, under the names this package has always used.
type (
	RunStarter = intake.RunStarter
	Response   = intake.Response
	StartedRun = intake.StartedRun
)

// NewHandler returns the handler of GitHub's and Gitea's webhooks for the
// repositories and pipelines of cfg: intake's, over Host. secrets holds
// each repository's webhook secret keyed by lower-cased full name, as
// config.Config.WebhookSecrets returns them.
func NewHandler(cfg *config.Config, secrets map[string][]byte, starter RunStarter, log zerolog.Logger) *intake.Handler {
	return intake.NewHandler(Host{}, cfg, secrets, starter, log)
}

// Host is what GitHub's and Gitea's deliveries are: their headers, their
// JSON or form-encoded payloads, their HMAC signatures, organization and
// app hooks that name no repository, and issue comments that approve.
type Host struct{}

var (
	_ intake.Host      = Host{}
	_ intake.Payloader = Host{}
	_ intake.Orgwide   = Host{}
	_ intake.Commenter = Host{}
)

// Name is "github"; Gitea's deliveries come here too.
func (Host) Name() string { return "github" }

// Headers reads GitHub's or Gitea's event and delivery headers.
func (Host) Headers(h http.Header) (eventType, deliveryID string, err error) {
	eventType = firstHeader(h, "X-GitHub-Event", "X-Gitea-Event")
	deliveryID = firstHeader(h, "X-GitHub-Delivery", "X-Gitea-Delivery")
	switch {
	case eventType == "":
		return "", deliveryID, errors.New("missing X-GitHub-Event header")
	case deliveryID == "":
		return eventType, "", errors.New("missing X-GitHub-Delivery header")
	}
	return eventType, deliveryID, nil
}

// Payload is the JSON payload: the body, or its payload field when the
// webhook's content type is application/x-www-form-urlencoded.
func (Host) Payload(h http.Header, body []byte) ([]byte, error) {
	d, err := parseDelivery(h.Get("Content-Type"), body)
	return d.payload, err
}

// Repo reads the payload's repository.full_name; "" when it names none.
func (Host) Repo(payload []byte) (string, error) {
	return repoOf(payload)
}

// Authenticate checks the signature of the body as sent (GitHub) or of
// its JSON payload (Gitea, which signs that even when it sends a form).
func (Host) Authenticate(h http.Header, body, secret []byte) error {
	d, err := parseDelivery(h.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	return verifySignature(h, secret, d.signed()...)
}

// IsPing says which event an organization's or app's hook sends when it
// is set up.
func (Host) IsPing(eventType string) bool { return eventType == "ping" }

// Normalize turns a delivery into the event it may start, or says why it
// starts nothing; issue comments that approve went to Comment before.
func (Host) Normalize(eventType, deliveryID string, payload []byte) ([]event.Event, string, error) {
	if eventType == "issue_comment" {
		return nil, commentIgnored(payload), nil
	}
	ev, ignored, err := Normalize(eventType, deliveryID, payload)
	if err != nil || ignored != "" {
		return nil, ignored, err
	}
	return []event.Event{ev}, "", nil
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

// malformed wraps err as a payload GitHub does not send.
func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformedPayload, what, err)
}
