package github

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sha1Signature is the legacy X-Hub-Signature value, which kiln never accepts alone.
func sha1Signature(body []byte, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

// TestHandlerRejects checks every refusal: each answers with its status and
// reason, and starts nothing.
func TestHandlerRejects(t *testing.T) {
	push := readTestdata(t, "push_feature_branch.json")
	signed := func(body string) *http.Request { return newDelivery("push", "d-1", []byte(body)) }
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/hooks/github", nil) },
			405, "method GET not allowed; webhooks are POSTed"},
		{"missing event header", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Del("X-GitHub-Event")
			return r
		}, 400, "missing X-GitHub-Event header"},
		{"missing delivery", func() *http.Request { return newDelivery("push", "", push) },
			400, "missing X-GitHub-Delivery header"},
		{"missing signature", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Del("X-Hub-Signature-256")
			return r
		}, 401, "missing X-Hub-Signature-256 header"},
		{"signed with another secret", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Set("X-Hub-Signature-256", hubSignature(push, "not-the-secret"))
			return r
		}, 401, "signature does not match"},
		{"body changed after signing", func() *http.Request {
			r := newDelivery("push", "d-1", bytes.Replace(push, []byte("feature/login"), []byte("feature/logon"), 1))
			r.Header.Set("X-Hub-Signature-256", hubSignature(push, testSecret))
			return r
		}, 401, "signature does not match"},
		{"sha1 signature alone", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set("X-Hub-Signature", sha1Signature(push, testSecret))
			return r
		}, 401, "missing X-Hub-Signature-256 header; a sha1 X-Hub-Signature alone is not accepted"},
		{"sha1 signature in the sha256 header", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Set("X-Hub-Signature-256", sha1Signature(push, testSecret))
			return r
		}, 401, "signature does not match: X-Hub-Signature-256 is not sha256=<hex>"},
		{"bad Gitea signature", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set("X-Gitea-Signature", giteaSignature(push, "not-the-secret"))
			return r
		}, 401, "signature does not match"},
		{"bad X-Hub-Signature-256 beside a good Gitea one", func() *http.Request {
			r := newDelivery("push", "d-1", push)
			r.Header.Set("X-Hub-Signature-256", hubSignature(push, "not-the-secret"))
			r.Header.Set("X-Gitea-Signature", giteaSignature(push, testSecret))
			return r
		}, 401, "signature does not match"},
		{"malformed JSON", func() *http.Request { return signed(`{"repository": {"full_name": "acme/widget"`) },
			400, "malformed webhook payload: unexpected end of JSON input"},
		{"form without payload", func() *http.Request {
			r := signed("other=1")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400, "malformed webhook payload: form body has no payload field"},
		{"null", func() *http.Request { return signed(`null`) }, 400, "malformed webhook payload: the payload is empty (null)"},
		{"empty object", func() *http.Request { return signed(` {} `) }, 400, "malformed webhook payload: the payload is empty ({})"},
		{"an array", func() *http.Request { return signed(`[1]`) }, 400, "malformed webhook payload: the payload is not a JSON object"},
		{"unknown repo", func() *http.Request {
			return signed(`{"ref":"refs/heads/main","repository":{"full_name":"evil/repo"}}`)
		},
			403, `unknown repo "evil/repo": not in kiln.yaml repos`},
		{"repo without loaded secret", func() *http.Request { return signed(`{"repository":{"full_name":"acme/nosecret"}}`) },
			500, `repo "acme/nosecret" has no webhook secret loaded`},
		{"push without commit", func() *http.Request {
			return signed(`{"ref":"refs/heads/main","repository":{"full_name":"acme/widget"}}`)
		},
			400, "malformed webhook payload: push to refs/heads/main names no commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pipelinesFor("acme/widget", "acme/nosecret")
			h, starter, logs := newTestHandler(t, cfg, "acme/nosecret")
			status, resp := serve(t, h, tt.req())
			assert.Equal(t, tt.status, status)
			assert.Equal(t, Response{Error: tt.reason}, resp)
			assert.Empty(t, starter.Calls())
			assert.Contains(t, logs.String(), "webhook rejected")
			assert.NotContains(t, logs.String(), testSecret)
		})
	}
}

// TestHandlerAllowHeader checks that a 405 names the method to use.
func TestHandlerAllowHeader(t *testing.T) {
	h, _, _ := newTestHandler(t, pipelinesFor("acme/widget"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/hooks/github", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
}

// TestHandlerBodyLimit checks the 25 MiB bound on both sides: one byte over is
// refused unread, exactly the limit is taken.
func TestHandlerBodyLimit(t *testing.T) {
	h, _, _ := newTestHandler(t, pipelinesFor("acme/widget"))
	pad := func(n int) []byte {
		head := `{"zen":"Design for failure.","hook_id":1,"repository":{"full_name":"acme/widget"},"pad":"`
		return []byte(head + strings.Repeat("x", n-len(head)-2) + `"}`)
	}
	over := pad(MaxBodyBytes + 1)
	status, resp := serve(t, h, newDelivery("ping", "d-big", over))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Equal(t, "body exceeds 26214400 bytes", resp.Error)

	atLimit := pad(MaxBodyBytes)
	require.Len(t, atLimit, MaxBodyBytes)
	status, resp = serve(t, h, newDelivery("ping", "d-big", atLimit))
	assert.Equal(t, http.StatusOK, status, resp.Error)
	assert.True(t, resp.Pong)
}
