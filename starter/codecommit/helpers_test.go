package codecommit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/starter/intake"
	"github.com/kiln-ci/kiln/starter/intake/intaketest"
)

// testToken is every test repository's webhook_secret; logs must never show it.
const testToken = "kiln-test-token-3c9e71"

// testRegion is the region of the fixtures and of every test repository.
const testRegion = "us-east-2"

// The fake starter and its calls are testkit's.
type (
	fakeStarter = intaketest.FakeStarter
	startCall   = intaketest.StartCall
)

// testConfig returns CodeCommit repositories in testRegion, each with one
// pipeline per trigger kind ("<repo>/branch", "<repo>/tag", "<repo>/review")
// firing on everything, and a GitHub repository acme/widget without
// codecommit.
func testConfig(repos ...string) *config.Config {
	cfg := &config.Config{File: "kiln.yaml"}
	for _, r := range repos {
		cfg.Repos = append(cfg.Repos, config.Repo{
			Name:          r,
			CloneURL:      "codecommit::" + testRegion + "://" + r,
			WebhookSecret: config.SecretRef{Env: "KILN_TEST_TOKEN"},
			CodeCommit:    &config.CodeCommitRepo{Region: testRegion},
		})
		cfg.Pipelines = append(cfg.Pipelines,
			config.Pipeline{Name: r + "/branch", Repo: r, Triggers: config.Triggers{Branch: []string{"*", "*/*"}}},
			config.Pipeline{Name: r + "/tag", Repo: r, Triggers: config.Triggers{Tag: []string{"*"}}},
			config.Pipeline{Name: r + "/review", Repo: r, Triggers: config.Triggers{Review: &config.ReviewTrigger{}}},
		)
	}
	cfg.Repos = append(cfg.Repos, config.Repo{
		Name:          "acme/widget",
		CloneURL:      "https://github.com/acme/widget.git",
		WebhookSecret: config.SecretRef{Env: "KILN_TEST_TOKEN"},
	})
	return cfg
}

// newTestHandler returns a handler for cfg whose every repository's secret is
// testToken, the fake starter behind it, and a buffer holding its logs.
func newTestHandler(t *testing.T, cfg *config.Config) (*intake.Handler, *fakeStarter, *bytes.Buffer) {
	t.Helper()
	return newTestHandlerSecrets(t, cfg, testSecrets(cfg))
}

// testSecrets gives every repository of cfg testToken.
func testSecrets(cfg *config.Config) map[string][]byte {
	secrets := map[string][]byte{}
	for _, r := range cfg.Repos {
		secrets[strings.ToLower(r.Name)] = []byte(testToken)
	}
	return secrets
}

// newTestHandlerSecrets is newTestHandler with the secrets given.
func newTestHandlerSecrets(t *testing.T, cfg *config.Config, secrets map[string][]byte) (*intake.Handler, *fakeStarter, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	starter := &fakeStarter{}
	return NewHandler(cfg, secrets, starter, zerolog.New(&logs)), starter, &logs
}

// newDelivery builds the POST an EventBridge API destination with an API-key
// connection sends.
func newDelivery(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/codecommit", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	r.Header.Set("User-Agent", "Amazon/EventBridge/ApiDestinations")
	r.Header.Set(TokenHeader, testToken)
	return r
}

// serve runs r through h and decodes the answer, which must be JSON.
func serve(t *testing.T, h http.Handler, r *http.Request) (int, intake.Response) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var resp intake.Response
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

// editEvent returns the fixture with edit applied to its decoded JSON.
func editEvent(t *testing.T, name string, edit func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	require.NoError(t, json.Unmarshal(readTestdata(t, name), &ev))
	edit(ev)
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return b
}

// detailOf is the detail object of a decoded event.
func detailOf(ev map[string]any) map[string]any { return ev["detail"].(map[string]any) }
