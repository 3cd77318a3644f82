package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// testSecret signs every test delivery; logs must never show it.
const testSecret = "kiln-test-secret-6d1f0b"

// The fake starter and its calls are testkit's.
type (
	fakeStarter = intaketest.FakeStarter
	startCall   = intaketest.StartCall
)

// withoutDeadlines checks that every call had a deadline, then clears it so
// calls compare by pipeline and event alone.
func withoutDeadlines(t *testing.T, calls []startCall) []startCall {
	t.Helper()
	for i := range calls {
		require.False(t, calls[i].Deadline.IsZero(), "StartRun for %s without a deadline", calls[i].Pipeline)
		calls[i].Deadline = time.Time{}
	}
	return calls
}

// pipelinesFor returns, for each repository, one pipeline per trigger kind:
// "<repo>/branch", "<repo>/tag" and "<repo>/review", each firing on everything.
func pipelinesFor(repos ...string) *config.Config {
	cfg := &config.Config{File: "kiln.yaml"}
	for _, r := range repos {
		cfg.Repos = append(cfg.Repos, config.Repo{
			Name:          r,
			CloneURL:      "https://github.com/" + r + ".git",
			WebhookSecret: config.SecretRef{Env: "KILN_TEST_SECRET"},
		})
		cfg.Pipelines = append(cfg.Pipelines,
			config.Pipeline{Name: r + "/branch", Repo: r, Triggers: config.Triggers{Branch: []string{"*", "*/*"}}},
			config.Pipeline{Name: r + "/tag", Repo: r, Triggers: config.Triggers{Tag: []string{"*"}}},
			config.Pipeline{Name: r + "/review", Repo: r, Triggers: config.Triggers{Review: &config.ReviewTrigger{}}},
		)
	}
	return cfg
}

// newTestHandler returns a handler for cfg whose every repository uses
// testSecret (but those listed in without, which have no secret loaded),
// the fake starter behind it, and a buffer holding its logs.
func newTestHandler(t *testing.T, cfg *config.Config, without ...string) (*intake.Handler, *fakeStarter, *bytes.Buffer) {
	t.Helper()
	secrets := map[string][]byte{}
	for _, r := range cfg.Repos {
		if !slices.Contains(without, r.Name) {
			secrets[strings.ToLower(r.Name)] = []byte(testSecret)
		}
	}
	var logs bytes.Buffer
	starter := &fakeStarter{}
	return NewHandler(cfg, secrets, starter, zerolog.New(&logs)), starter, &logs
}

// hubSignature returns body's X-Hub-Signature-256 value under secret.
func hubSignature(body []byte, secret string) string {
	return "sha256=" + giteaSignature(body, secret)
}

// giteaSignature returns body's X-Gitea-Signature value: bare hex.
func giteaSignature(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// newDelivery builds a JSON POST to /hooks/github signed as GitHub signs it.
func newDelivery(eventType, deliveryID string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	r.Header.Set("X-GitHub-Event", eventType)
	r.Header.Set("X-GitHub-Delivery", deliveryID)
	r.Header.Set("X-Hub-Signature-256", hubSignature(body, testSecret))
	return r
}

// serve runs r through h and decodes the answer, which must be JSON.
func serve(t *testing.T, h http.Handler, r *http.Request) (int, Response) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var resp Response
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp), "body: %s", rec.Body)
	return rec.Code, resp
}

// readTestdata returns a file of testdata/.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}
