package intake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
)

// MaxBodyBytes bounds a delivery's body. GitHub caps payloads at 25 MiB,
// and no host sends more.
const MaxBodyBytes = 25 << 20

// StartTimeout bounds starting a delivery's runs, so it is answered within
// the 10 seconds hosts wait, with a second to spare for the network, even
// when Temporal is slow. A delivery answered 503 is redelivered on request
// (or by a proxy that honours Retry-After), and the workflow ID makes the
// redelivery start nothing twice.
const StartTimeout = 9 * time.Second

// Host is what one git host's endpoint knows of its own deliveries: which
// headers name the event and the delivery, how a delivery proves it comes
// from the repository's hook, and what its payload means. Handler does the
// rest, the same for every host.
type Host interface {
	// Name is the host's name, for logs and answers: "gitlab".
	Name() string
	// Headers reads the event type and the delivery ID, which makes a
	// redelivery a duplicate; an error names the missing header. A host
	// whose deliveries carry them in the body (EventBridge's envelope)
	// returns "" for both, and Normalize gives each event its ID.
	Headers(h http.Header) (eventType, deliveryID string, err error)
	// Repo reads the name of the repository the payload is about, as
	// kiln.yaml lists it; "" when it names none.
	Repo(payload []byte) (string, error)
	// Authenticate checks the delivery with the repository's secret.
	Authenticate(h http.Header, body, secret []byte) error
	// Normalize turns a delivery into the events it may start, each with
	// its own delivery ID, or says why it starts nothing.
	Normalize(eventType, deliveryID string, payload []byte) (evs []event.Event, ignored string, err error)
}

// Identifier is a Host whose deliveries carry their event type and ID in
// the body: Handler logs them from there.
type Identifier interface {
	Identify(payload []byte) (eventType, deliveryID string)
}

// Limited is a Host whose deliveries have bounds of their own, tighter
// than every host's MaxBodyBytes and StartTimeout: EventBridge's events
// are at most 256 KiB, and it waits 5 s for an answer.
type Limited interface {
	Limits() (maxBody int64, startTimeout time.Duration)
}

// RepoChecker is a Host that knows more of a repository than kiln.yaml's
// listing it: a CodeCommit event must be for a repository kiln.yaml marks
// codecommit, in its region. An error is answered 403.
type RepoChecker interface {
	CheckRepo(repo *config.Repo, payload []byte) error
}

// Payloader is a Host whose delivery may wrap its JSON payload, as
// GitHub's form-encoded webhooks do: Handler reads the payload with it
// first, and the Host's other methods (but Authenticate, which gets the
// body as sent) see the payload.
type Payloader interface {
	Payload(h http.Header, body []byte) ([]byte, error)
}

// Orgwide is a Host whose hooks may belong to an organization or an app,
// and whose deliveries then name no repository: Handler answers their ping
// 200 and the rest 202, where another host's would be refused.
type Orgwide interface {
	IsPing(eventType string) bool
}

// Ping is the ignored reason Normalize gives a host's ping, the event a
// webhook sends when it is set up: Handler answers it 200, pong.
const Ping = "ping"

// Commenter is a Host whose deliveries may be new comments on a pull or
// merge request; Handler answers those with AnswerComment. Comment returns
// nil for a delivery that is no such comment.
type Commenter interface {
	Comment(eventType string, payload []byte) (*Comment, error)
}

// ErrMalformed wraps the errors of a payload that is not what its host
// sends: the delivery is answered 400.
var ErrMalformed = errors.New("malformed webhook payload")

// Handler is the http.Handler of one host's webhooks. It accepts
// deliveries only for the repositories kiln.yaml lists, authenticated with
// their secret, and answers as every kiln intake does.
type Handler struct {
	host    Host
	cfg     *config.Config
	secrets map[string][]byte
	starter RunStarter
	log     zerolog.Logger
}

// NewHandler returns the Handler of host for the repositories and pipelines
// of cfg; secrets holds each repository's secret by lower-cased name.
func NewHandler(host Host, cfg *config.Config, secrets map[string][]byte, starter RunStarter, log zerolog.Logger) *Handler {
	return &Handler{host: host, cfg: cfg, secrets: secrets, starter: starter, log: log.With().Str("host", host.Name()).Logger()}
}

// ServeHTTP takes one delivery: it checks method, headers, size, repository
// and authentication, in that order, then starts the pipelines its events
// trigger.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		Reject(w, h.log, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; webhooks are POSTed")
		return
	}
	eventType, deliveryID, err := h.host.Headers(r.Header)
	if err == nil && (eventType != "" || deliveryID != "") {
		err = event.CheckDeliveryID(deliveryID)
	}
	log := h.log
	if eventType != "" || deliveryID != "" {
		log = log.With().Str("event", eventType).Str("delivery", deliveryID).Logger()
	}
	if err != nil {
		Reject(w, log, http.StatusBadRequest, err.Error())
		return
	}
	body, repo, found, status, err := h.read(w, r)
	if found.delivery != "" {
		log = log.With().Str("event", found.event).Str("delivery", found.delivery).Logger()
	}
	log = log.With().Str("repo", repo).Logger()
	if org, ok := h.host.(Orgwide); ok && errors.Is(err, errNoRepository) {
		if org.IsPing(eventType) {
			log.Info().Msg("webhook ping without a repository")
			WriteJSON(w, http.StatusOK, Response{Pong: true})
			return
		}
		Ignore(w, log, fmt.Sprintf("%s names no repository; kiln starts runs only for the repositories in kiln.yaml", eventType))
		return
	}
	if err != nil {
		Reject(w, log, status, err.Error())
		return
	}
	if cm, ok := h.host.(Commenter); ok {
		c, err := cm.Comment(eventType, body)
		if err != nil {
			Reject(w, log, http.StatusBadRequest, err.Error())
			return
		}
		if c != nil {
			AnswerComment(r.Context(), w, log, h.cfg, h.starter, repo, *c)
			return
		}
	}
	evs, ignored, err := h.host.Normalize(eventType, deliveryID, body)
	for i := 0; err == nil && i < len(evs); i++ {
		err = evs[i].Check()
	}
	switch {
	case err != nil:
		Reject(w, log, http.StatusBadRequest, err.Error())
	case ignored == Ping:
		log.Info().Msg("webhook ping")
		WriteJSON(w, http.StatusOK, Response{Pong: true})
	case ignored != "" || len(evs) == 0:
		Ignore(w, log, ignored)
	default:
		h.start(r.Context(), w, log, evs)
	}
}

// errNoRepository: the delivery names no repository.
var errNoRepository = errors.New("payload names no repository")

// identity is the event type and delivery ID an Identifier found in a
// payload.
type identity struct{ event, delivery string }

// read reads the body and its payload, finds its repository, and
// authenticates it with the repository's secret; on failure it returns
// the status to answer with. It returns the payload, and what an
// Identifier found in it.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (payload []byte, repo string, found identity, status int, err error) {
	limit, _ := h.limits()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, "", found, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", limit)
		}
		return nil, "", found, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	payload = body
	if p, ok := h.host.(Payloader); ok {
		if payload, err = p.Payload(r.Header, body); err != nil {
			return nil, "", found, http.StatusBadRequest, err
		}
	}
	if id, ok := h.host.(Identifier); ok {
		found.event, found.delivery = id.Identify(payload)
	}
	repo, err = h.host.Repo(payload)
	listed := h.cfg.Repo(repo)
	switch {
	case err != nil:
		return nil, repo, found, http.StatusBadRequest, err
	case repo == "":
		return nil, repo, found, http.StatusForbidden, errNoRepository
	case listed == nil:
		return nil, repo, found, http.StatusForbidden, fmt.Errorf("unknown repo %q: not in kiln.yaml repos", repo)
	}
	if rc, ok := h.host.(RepoChecker); ok {
		if err := rc.CheckRepo(listed, payload); err != nil {
			return nil, repo, found, http.StatusForbidden, err
		}
	}
	secret := h.secrets[strings.ToLower(repo)]
	if len(secret) == 0 {
		// kiln refuses to start without secrets, so this is a wiring bug;
		// an empty secret would make anything check out.
		return nil, repo, found, http.StatusInternalServerError, fmt.Errorf("repo %q has no webhook secret loaded", repo)
	}
	if err := h.host.Authenticate(r.Header, body, secret); err != nil {
		return nil, repo, found, http.StatusUnauthorized, err
	}
	return payload, repo, found, 0, nil
}

// limits are the host's bounds on a body and on starting its runs.
func (h *Handler) limits() (int64, time.Duration) {
	if l, ok := h.host.(Limited); ok {
		return l.Limits()
	}
	return MaxBodyBytes, StartTimeout
}

// start starts the runs of every event and answers once for all of them.
func (h *Handler) start(ctx context.Context, w http.ResponseWriter, log zerolog.Logger, evs []event.Event) {
	_, budget := h.limits()
	if len(evs) == 1 {
		StartMatching(ctx, w, log.With().Str("ref", evs[0].Ref).Logger(), h.cfg, h.starter, evs[0], budget)
		return
	}
	// Several changes in one delivery (a Bitbucket push): each is started
	// at once, under the one budget, answered into a recorder, and the
	// answers merged into one.
	recs := make([]*recorder, len(evs))
	var wg sync.WaitGroup
	for i, ev := range evs {
		recs[i] = &recorder{header: http.Header{}}
		wg.Go(func() {
			StartMatching(ctx, recs[i], log.With().Str("ref", ev.Ref).Logger(), h.cfg, h.starter, ev, budget)
		})
	}
	wg.Wait()
	var merged Response
	status := http.StatusAccepted
	var ignored []string
	for _, rec := range recs {
		resp := rec.response()
		merged.Started = append(merged.Started, resp.Started...)
		if resp.Ignored != "" {
			ignored = append(ignored, resp.Ignored)
		}
		if resp.Error != "" {
			merged.Error = strings.TrimSpace(merged.Error + "\n" + resp.Error)
		}
		status = worse(status, rec.status)
		if v := rec.header.Get("Retry-After"); v != "" {
			w.Header().Set("Retry-After", v)
		}
	}
	if status == http.StatusAccepted {
		merged.Ignored = strings.Join(ignored, "; ")
	}
	WriteJSON(w, status, merged)
}

// worse is the answer of two for one delivery: a failure over a refusal
// for capacity (which a retry mends), over a start, over an ignore.
func worse(a, b int) int {
	rank := func(s int) int {
		switch {
		case s == http.StatusServiceUnavailable:
			return 3
		case s >= 500:
			return 4
		case s == http.StatusOK:
			return 2
		default:
			return 1
		}
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// recorder keeps one answer of StartMatching, to merge with others.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

func (r *recorder) response() Response {
	var resp Response
	_ = json.Unmarshal(r.body.Bytes(), &resp) // WriteJSON wrote it
	return resp
}

// CheckToken reports whether the shared token sent in header (GitLab's
// X-Gitlab-Token, CodeCommit's X-Kiln-Token) is the repository's secret,
// compared in constant time.
func CheckToken(h http.Header, header string, secret []byte) error {
	got := h.Get(header)
	if got == "" {
		return fmt.Errorf("missing %s header", header)
	}
	// Hashed first, so not even the secret's length shows in the time.
	g, want := sha256.Sum256([]byte(got)), sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(g[:], want[:]) != 1 {
		return fmt.Errorf("%s does not match the repository's webhook_secret", header)
	}
	return nil
}

// ReadHeaders reads a delivery's event type from eventHeader and its ID
// from the first of idHeaders that is set; the error names what is missing.
func ReadHeaders(h http.Header, eventHeader string, idHeaders ...string) (eventType, deliveryID string, err error) {
	eventType = h.Get(eventHeader)
	for _, name := range idHeaders {
		if deliveryID = h.Get(name); deliveryID != "" {
			break
		}
	}
	switch {
	case eventType == "":
		return "", deliveryID, fmt.Errorf("missing %s header", eventHeader)
	case deliveryID == "":
		return eventType, "", fmt.Errorf("missing %s header", strings.Join(idHeaders, " or "))
	}
	return eventType, deliveryID, nil
}

// StringAt reads the string at path in a JSON object payload, such as a
// repository's name; "" when the payload has nothing there.
func StringAt(payload []byte, path ...string) (string, error) {
	raw := json.RawMessage(payload)
	for _, key := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrMalformed, strings.Join(path, "."), err)
		}
		if raw = obj[key]; raw == nil {
			return "", nil
		}
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrMalformed, strings.Join(path, "."), err)
	}
	if s == nil {
		return "", nil
	}
	return *s, nil
}
