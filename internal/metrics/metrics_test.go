package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndpoint: webhook answers are counted by host and status, and the
// SDK's metrics land in the same Prometheus text, in seconds.
func TestEndpoint(t *testing.T) {
	m, err := New()
	require.NoError(t, err)
	accepted := m.CountAnswers("gitlab", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	ok := m.CountAnswers("github", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") }))
	for range 2 {
		accepted.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/hooks/gitlab", nil))
	}
	ok.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/hooks/github", nil))
	m.SDK.WithTags(map[string]string{"stage": "build"}).Timer("kiln_stage_duration").Record(1500 * 1e6) // 1.5 s

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	assert.Contains(t, body, `kiln_webhook_answers_total{host="gitlab",status="202"} 2`)
	assert.Contains(t, body, `kiln_webhook_answers_total{host="github",status="200"} 1`)
	assert.Contains(t, body, `kiln_stage_duration_seconds_bucket{stage="build",le="1"} 0`)
	assert.Contains(t, body, `kiln_stage_duration_seconds_bucket{stage="build",le="2.5"} 1`)
}
