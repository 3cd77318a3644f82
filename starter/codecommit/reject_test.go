package codecommit

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHandlerRejects checks every refusal: each answers with its status and
// reason, and starts nothing.
func TestHandlerRejects(t *testing.T) {
	push := readTestdata(t, "branch_updated.json")
	withToken := func(token string) func() *http.Request {
		return func() *http.Request {
			r := newDelivery(push)
			r.Header.Set(TokenHeader, token)
			return r
		}
	}
	edited := func(edit func(ev map[string]any)) func() *http.Request {
		return func() *http.Request { return newDelivery(editEvent(t, "branch_updated.json", edit)) }
	}
	raw := func(body string) func() *http.Request {
		return func() *http.Request { return newDelivery([]byte(body)) }
	}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/hooks/codecommit", nil) },
			405, "method GET not allowed; webhooks are POSTed"},
		{"missing token", func() *http.Request {
			r := newDelivery(push)
			r.Header.Del(TokenHeader)
			return r
		}, 401, "missing X-Kiln-Token header"},
		{"wrong token", withToken("not-the-token"), 401, "X-Kiln-Token does not match the repository's webhook_secret"},
		{"token with a trailing newline", withToken(testToken + "\n"), 401, "X-Kiln-Token does not match the repository's webhook_secret"},
		{"token of another prefix length", withToken(testToken[:5]), 401, "X-Kiln-Token does not match the repository's webhook_secret"},
		{"unknown repository", edited(func(ev map[string]any) { detailOf(ev)["repositoryName"] = "secret-project" }),
			403, `unknown repo "secret-project": not in kiln.yaml repos`},
		{"repository without codecommit", edited(func(ev map[string]any) { detailOf(ev)["repositoryName"] = "acme/widget" }),
			403, `unknown repo "acme/widget": kiln.yaml does not mark it codecommit`},
		{"repository in another region", edited(func(ev map[string]any) { ev["region"] = "eu-west-1" }),
			403, `unknown repo "widget" in region "eu-west-1": kiln.yaml has it in "us-east-2"`},
		{"event names no repository", edited(func(ev map[string]any) { delete(detailOf(ev), "repositoryName") }),
			403, "payload names no repository"},
		{"unknown pull request repository", func() *http.Request {
			return newDelivery(editEvent(t, "pull_request_created.json", func(ev map[string]any) {
				detailOf(ev)["repositoryNames"] = []string{"secret-project"}
			}))
		}, 403, `unknown repo "secret-project": not in kiln.yaml repos`},
		{"source is not CodeCommit", edited(func(ev map[string]any) { ev["source"] = "aws.s3" }),
			400, `malformed CodeCommit event: source is "aws.s3", not "aws.codecommit"`},
		{"source is missing", edited(func(ev map[string]any) { delete(ev, "source") }),
			400, `malformed CodeCommit event: source is "", not "aws.codecommit"`},
		{"no id", edited(func(ev map[string]any) { delete(ev, "id") }),
			400, "malformed CodeCommit event: event has no id"},
		{"no detail-type", edited(func(ev map[string]any) { delete(ev, "detail-type") }),
			400, "malformed CodeCommit event: event has no detail-type"},
		{"detail is a string", edited(func(ev map[string]any) { ev["detail"] = "widget" }),
			400, "malformed CodeCommit event: detail is missing or not an object; is this an EventBridge event?"},
		{"GitHub push payload", raw(`{"ref":"refs/heads/main","repository":{"full_name":"widget"}}`),
			400, "malformed CodeCommit event: detail is missing or not an object; is this an EventBridge event?"},
		{"malformed JSON", raw(`{"version":"0","detail":{`),
			400, "malformed CodeCommit event: body is not JSON: unexpected end of JSON input"},
		{"empty body", raw(``),
			400, "malformed CodeCommit event: body is not JSON: unexpected end of JSON input"},
		{"oversized body", raw(`{"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`),
			413, "body exceeds 1048576 bytes"},
		{"branch ref outside refs/heads", edited(func(ev map[string]any) { detailOf(ev)["referenceFullName"] = "refs/tags/main" }),
			400, `malformed CodeCommit event: branch reference "refs/tags/main" is not under refs/heads/`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fake, _ := newTestHandler(t, testConfig("widget"))
			status, resp := serve(t, h, tt.req())
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.reason, resp.Error)
			assert.Empty(t, resp.Started)
			assert.Empty(t, resp.Ignored)
			assert.Empty(t, fake.Calls())
		})
	}
}

// TestHandlerRepoBeforeToken checks an unknown repository is refused as such
// even without a token: the token to check is the repository's secret.
func TestHandlerRepoBeforeToken(t *testing.T) {
	h, _, _ := newTestHandler(t, testConfig("widget"))
	r := newDelivery(editEvent(t, "branch_updated.json", func(ev map[string]any) { detailOf(ev)["repositoryName"] = "other" }))
	r.Header.Del(TokenHeader)
	status, resp := serve(t, h, r)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, `unknown repo "other": not in kiln.yaml repos`, resp.Error)
}

// TestHandlerTokenIsPerRepository checks one repository's token does not open
// another's door.
func TestHandlerTokenIsPerRepository(t *testing.T) {
	cfg := testConfig("widget", "gadget")
	secrets := testSecrets(cfg)
	secrets["gadget"] = []byte("gadget-token")
	h, fake, _ := newTestHandlerSecrets(t, cfg, secrets)
	body := editEvent(t, "branch_updated.json", func(ev map[string]any) { detailOf(ev)["repositoryName"] = "gadget" })
	status, resp := serve(t, h, newDelivery(body)) // widget's token
	assert.Equal(t, http.StatusUnauthorized, status, resp.Error)

	r := newDelivery(body)
	r.Header.Set(TokenHeader, "gadget-token")
	status, resp = serve(t, h, r)
	assert.Equal(t, http.StatusOK, status, resp.Error)
	assert.Len(t, fake.Calls(), 1)
}

// TestHandlerMissingSecret answers 500 for a repository with no secret loaded,
// a wiring bug, rather than accepting an empty token.
func TestHandlerMissingSecret(t *testing.T) {
	h, fake, _ := newTestHandlerSecrets(t, testConfig("widget"), map[string][]byte{})
	r := newDelivery(readTestdata(t, "branch_updated.json"))
	r.Header.Set(TokenHeader, "")
	status, resp := serve(t, h, r)
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, `repo "widget" has no webhook secret loaded`, resp.Error)
	assert.Empty(t, fake.Calls())
}

// TestHandlerBodyLimit accepts an event at EventBridge's 256 KiB maximum.
func TestHandlerBodyLimit(t *testing.T) {
	body := editEvent(t, "pull_request_created.json", func(ev map[string]any) {
		detailOf(ev)["description"] = strings.Repeat("d", 250<<10)
	})
	h, fake, _ := newTestHandler(t, testConfig("widget"))
	status, resp := serve(t, h, newDelivery(bytes.Clone(body)))
	assert.Equal(t, http.StatusOK, status, resp.Error)
	assert.Len(t, fake.Calls(), 1)
}

// TestHandlerAllowHeader tells a client using another method what to use.
func TestHandlerAllowHeader(t *testing.T) {
	h, _, _ := newTestHandler(t, testConfig("widget"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/hooks/codecommit", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
}
