package github

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	kilnstarter "github.com/kiln-ci/kiln/starter"
)

// TestHandlerTestdata delivers the hand-written payloads through the handler.
func TestHandlerTestdata(t *testing.T) {
	tests := []struct {
		file, eventType string
		status          int
		ignored         string
		pipeline        string
		check           func(t *testing.T, ev event.Event)
	}{
		{file: "push_feature_branch.json", eventType: "push", status: 200, pipeline: "acme/widget/branch",
			check: func(t *testing.T, ev event.Event) { assert.Equal(t, "feature/login", ev.Branch) }},
		{file: "push_forced.json", eventType: "push", status: 200, pipeline: "acme/widget/branch",
			check: func(t *testing.T, ev event.Event) { assert.True(t, ev.Forced) }},
		{file: "pull_request_fork.json", eventType: "pull_request", status: 200, pipeline: "acme/widget/review",
			check: func(t *testing.T, ev event.Event) {
				assert.True(t, ev.PullRequest.Fork)
				assert.Equal(t, "https://github.com/outsider/widget.git", ev.PullRequest.SourceCloneURL)
			}},
		{file: "push_branch_deleted.json", eventType: "push", status: 202, ignored: "branch feature/login deleted"},
		{file: "gitea_push_deleted.json", eventType: "push", status: 202, ignored: "branch old-work deleted"},
		{file: "gitea_push_created.json", eventType: "push", status: 200, pipeline: "acme/gadget/branch",
			check: func(t *testing.T, ev event.Event) { assert.Equal(t, "release/2.0", ev.Branch) }},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, starter, _ := newTestHandler(t, pipelinesFor("acme/widget", "acme/gadget"))
			status, resp := serve(t, h, newDelivery(tt.eventType, "d-7", readTestdata(t, tt.file)))
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.ignored, resp.Ignored)
			calls := starter.Calls()
			if tt.pipeline == "" {
				assert.Empty(t, calls)
				return
			}
			require.Len(t, calls, 1)
			assert.Equal(t, tt.pipeline, calls[0].Pipeline)
			assert.Equal(t, "d-7", calls[0].Event.DeliveryID)
			assert.Equal(t, []StartedRun{{Pipeline: tt.pipeline, WorkflowID: "kiln/" + tt.pipeline + "/d-7"}}, resp.Started)
			tt.check(t, calls[0].Event)
		})
	}
}

// giteaDelivery builds a delivery the way Gitea sends it: its own headers,
// X-GitHub-Event for compatibility, and a bare-hex signature of the JSON.
func giteaDelivery(eventType, deliveryID string, body []byte) *http.Request {
	r := newDelivery(eventType, "", body)
	r.Header.Del("X-GitHub-Delivery")
	r.Header.Del("X-Hub-Signature-256")
	r.Header.Set("X-Gitea-Event", eventType)
	r.Header.Set("X-Gitea-Event-Type", "pull_request_sync")
	r.Header.Set("X-Gitea-Delivery", deliveryID)
	r.Header.Set("X-Gitea-Signature", giteaSignature(body, testSecret))
	return r
}

// TestHandlerGitea checks Gitea's headers, signature and "synchronized" action.
func TestHandlerGitea(t *testing.T) {
	body := readTestdata(t, "gitea_pull_request_synchronized.json")
	cases := map[string]func(r *http.Request){
		"with X-GitHub-Event": func(*http.Request) {},
		"X-Gitea-Event alone": func(r *http.Request) { r.Header.Del("X-GitHub-Event") },
		"uppercase hex in sig": func(r *http.Request) {
			r.Header.Set("X-Gitea-Signature", strings.ToUpper(giteaSignature(body, testSecret)))
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			h, starter, _ := newTestHandler(t, pipelinesFor("acme/gadget"))
			r := giteaDelivery("pull_request", "gitea-uuid-1", body)
			mutate(r)
			status, resp := serve(t, h, r)
			require.Equal(t, http.StatusOK, status, resp.Error)
			calls := starter.Calls()
			require.Len(t, calls, 1)
			assert.Equal(t, "acme/gadget/review", calls[0].Pipeline)
			ev := calls[0].Event
			assert.Equal(t, "gitea-uuid-1", ev.DeliveryID)
			assert.Equal(t, event.KindReview, ev.Kind)
			assert.Equal(t, "refs/pull/7/head", ev.Ref)
			assert.Equal(t, "c0ffee1234567890abcdef1234567890abcdef12", ev.Commit)
			assert.False(t, ev.PullRequest.Fork)
		})
	}
}

// TestHandlerFormEncoded checks webhooks configured with content type
// application/x-www-form-urlencoded. GitHub signs the form body; Gitea signs
// the JSON payload inside it.
func TestHandlerFormEncoded(t *testing.T) {
	payload := readTestdata(t, "push_feature_branch.json")
	form := []byte(url.Values{"payload": {string(payload)}}.Encode())
	cases := map[string]struct {
		header, sig string
		status      int
	}{
		"GitHub signs the form":    {"X-Hub-Signature-256", hubSignature(form, testSecret), 200},
		"Gitea signs the payload":  {"X-Gitea-Signature", giteaSignature(payload, testSecret), 200},
		"signature of other bytes": {"X-Hub-Signature-256", hubSignature([]byte("payload="), testSecret), 401},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h, starter, _ := newTestHandler(t, pipelinesFor("acme/widget"))
			r := newDelivery("push", "d-form", form)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Del("X-Hub-Signature-256")
			r.Header.Set(tc.header, tc.sig)
			status, resp := serve(t, h, r)
			assert.Equal(t, tc.status, status, resp.Error)
			if tc.status == 200 {
				require.Len(t, starter.Calls(), 1)
				assert.Equal(t, "feature/login", starter.Calls()[0].Event.Branch)
			}
		})
	}
}

// TestHandlerRedelivery checks that a redelivery, which finds its run already
// started, is a success reported as a duplicate.
func TestHandlerRedelivery(t *testing.T) {
	h, starter, _ := newTestHandler(t, pipelinesFor("acme/widget"))
	starter.Dup = true
	status, resp := serve(t, h, newDelivery("push", "d-again", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, []StartedRun{{Pipeline: "acme/widget/branch", WorkflowID: "kiln/acme/widget/branch/d-again", Duplicate: true}}, resp.Started)
}

// TestHandlerStarterError checks that a failed start answers 500, so the sender
// may redeliver, after trying every matching pipeline.
func TestHandlerStarterError(t *testing.T) {
	cfg := pipelinesFor("acme/widget")
	cfg.Pipelines = append(cfg.Pipelines, config.Pipeline{Name: "second", Repo: "acme/widget",
		Triggers: config.Triggers{Branch: []string{"feature/*"}}})
	h, starter, _ := newTestHandler(t, cfg)
	starter.Err = errors.New("temporal unavailable")
	status, resp := serve(t, h, newDelivery("push", "d-1", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, "pipeline acme/widget/branch: temporal unavailable\npipeline second: temporal unavailable", resp.Error)
	assert.Len(t, starter.Calls(), 2)
}

// TestHandlerNoPipeline checks the answer when the repository is known but no
// pipeline is triggered by the event.
func TestHandlerNoPipeline(t *testing.T) {
	cfg := pipelinesFor("acme/widget")
	cfg.Pipelines = cfg.Pipelines[2:] // review only
	h, starter, _ := newTestHandler(t, cfg)
	status, resp := serve(t, h, newDelivery("push", "d-1", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, "no pipeline of repo acme/widget is triggered by branch feature/login", resp.Ignored)
	assert.Empty(t, starter.Calls())
}

// TestHandlerStartDeadline checks that runs are started under a deadline that
// lets the handler answer within GitHub's 10 seconds.
func TestHandlerStartDeadline(t *testing.T) {
	h, starter, _ := newTestHandler(t, pipelinesFor("acme/widget"))
	serve(t, h, newDelivery("push", "d-1", readTestdata(t, "push_feature_branch.json")))
	require.Len(t, starter.Calls(), 1)
	assert.WithinDuration(t, time.Now().Add(9*time.Second), starter.Calls()[0].Deadline, 500*time.Millisecond)
}

// TestHandlerOverloaded checks that a start kiln refused for overload is a
// 503 with Retry-After, which a proxy or host may retry, and that one beside
// a start that failed for another reason is a 500.
func TestHandlerOverloaded(t *testing.T) {
	cfg := pipelinesFor("acme/widget")
	cfg.Pipelines = append(cfg.Pipelines, config.Pipeline{Name: "second", Repo: "acme/widget",
		Triggers: config.Triggers{Branch: []string{"feature/*"}}})
	busy := &kilnstarter.Overloaded{RetryAfter: 30 * time.Second, Reason: "64 starts already in flight"}

	h, starter, logs := newTestHandler(t, cfg)
	starter.ErrFor = map[string]error{"acme/widget/branch": busy, "second": busy}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newDelivery("push", "d-1", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "30", rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), "kiln is over capacity: 64 starts already in flight")
	assert.Contains(t, logs.String(), `"level":"warn"`)

	h, starter, _ = newTestHandler(t, cfg)
	starter.ErrFor = map[string]error{"acme/widget/branch": busy, "second": errors.New("invalid argument")}
	status, resp := serve(t, h, newDelivery("push", "d-2", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Contains(t, resp.Error, "pipeline second: invalid argument")

	h, starter, _ = newTestHandler(t, cfg)
	starter.ErrFor = map[string]error{"second": busy}
	status, resp = serve(t, h, newDelivery("push", "d-3", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusServiceUnavailable, status, "the runs that did start are listed; the rest may be retried")
	assert.Equal(t, []StartedRun{{Pipeline: "acme/widget/branch", WorkflowID: "kiln/acme/widget/branch/d-3"}}, resp.Started)
}

// TestHandlerRepoNameCase checks that repository names match the allowlist and
// the secrets whatever their case, as GitHub's do.
func TestHandlerRepoNameCase(t *testing.T) {
	h, starter, _ := newTestHandler(t, pipelinesFor("ACME/Widget"))
	status, resp := serve(t, h, newDelivery("push", "d-1", readTestdata(t, "push_feature_branch.json")))
	assert.Equal(t, http.StatusOK, status, resp.Error)
	assert.Len(t, starter.Calls(), 1)
}

// TestHandlerLogs checks that logs carry the delivery's identity and never the
// secret or the body.
func TestHandlerLogs(t *testing.T) {
	h, _, logs := newTestHandler(t, pipelinesFor("acme/widget"))
	body := readTestdata(t, "push_forced.json")
	serve(t, h, newDelivery("push", "d-log", body))
	bad := newDelivery("push", "d-bad", body)
	bad.Header.Set("X-Hub-Signature-256", hubSignature(body, "wrong"))
	serve(t, h, bad)

	out := logs.String()
	assert.NotContains(t, out, testSecret)
	assert.NotContains(t, out, "Squash the login work")
	var started map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(line, &m), "log line is not JSON: %s", line)
		if m["message"] == "run started" {
			started = m
		}
	}
	require.NotNil(t, started, "no run started line in %s", out)
	for k, v := range map[string]any{"repo": "acme/widget", "event": "push", "delivery": "d-log",
		"ref": "refs/heads/main", "pipeline": "acme/widget/branch", "workflow_id": "kiln/acme/widget/branch/d-log"} {
		assert.Equal(t, v, started[k], k)
	}
	assert.Contains(t, out, `"reason":"signature does not match"`)
}
