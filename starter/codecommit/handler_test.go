package codecommit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/starter/intake"
)

// TestHandlerTestdata delivers every fixture through the handler and checks
// the event each started run received, or the reason it was ignored.
func TestHandlerTestdata(t *testing.T) {
	tests := []struct {
		file     string
		status   int
		ignored  string
		pipeline string
		want     event.Event
	}{
		{file: "branch_updated.json", status: 200, pipeline: "widget/branch", want: event.Event{
			Kind: event.KindBranch, Host: event.HostCodeCommit, Repo: "widget",
			Ref: "refs/heads/main", Branch: "main",
			Commit: "9d2f6c1e0a7b4e3f8c5d1a2b3c4d5e6f7a8b9c0d", Before: "1a2b3c4d5e6f7a8b9c0d9d2f6c1e0a7b4e3f8c5d",
			Sender:     "arn:aws:iam::123456789012:user/jane-doe",
			DeliveryID: "6f1c2a0e-3b7d-4c55-9e2a-0d8b1f4e7a31",
		}},
		{file: "tag_created.json", status: 200, pipeline: "widget/tag", want: event.Event{
			Kind: event.KindTag, Host: event.HostCodeCommit, Repo: "widget",
			Ref: "refs/tags/v1.2.0", Tag: "v1.2.0", Commit: "4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d",
			Sender:     "arn:aws:sts::123456789012:assumed-role/release/jane-doe",
			DeliveryID: "b3e0d6a4-8f21-4c0a-a7d9-5e6f1c2b9a80",
		}},
		{file: "pull_request_created.json", status: 200, pipeline: "widget/review", want: event.Event{
			Kind: event.KindReview, Host: event.HostCodeCommit, Repo: "widget",
			Ref: "refs/heads/feature/login", Branch: "feature/login",
			Commit: "e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
			PullRequest: &event.PullRequest{
				Number: 7, Title: "Add login form", SourceBranch: "feature/login", TargetBranch: "main",
				SourceCommit: "e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
				TargetCommit: "9d2f6c1e0a7b4e3f8c5d1a2b3c4d5e6f7a8b9c0d",
			},
			Sender: "arn:aws:iam::123456789012:user/jane-doe", Message: "Add login form",
			DeliveryID: "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
		}},
		{file: "pull_request_source_updated.json", status: 200, pipeline: "widget/review", want: event.Event{
			Kind: event.KindReview, Host: event.HostCodeCommit, Repo: "widget",
			Ref: "refs/heads/feature/login", Branch: "feature/login",
			Commit: "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
			PullRequest: &event.PullRequest{
				Number: 7, Title: "Add login form", SourceBranch: "feature/login", TargetBranch: "main",
				SourceCommit: "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
				TargetCommit: "9d2f6c1e0a7b4e3f8c5d1a2b3c4d5e6f7a8b9c0d",
			},
			Sender: "arn:aws:iam::123456789012:user/john-roe", Message: "Add login form",
			DeliveryID: "a8b7c6d5-e4f3-4a2b-91c0-d8e7f6a5b4c3",
		}},
		{file: "branch_deleted.json", status: 202, ignored: "branch feature/login deleted"},
		{file: "pull_request_closed.json", status: 202, ignored: `pull request 7 is closed, not open`},
		{file: "pull_request_reopened.json", status: 200, pipeline: "widget/review", want: event.Event{
			Kind: event.KindReview, Host: event.HostCodeCommit, Repo: "widget",
			Ref: "refs/heads/feature/login", Branch: "feature/login",
			Commit: "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
			PullRequest: &event.PullRequest{
				Number: 7, Title: "Add login form", SourceBranch: "feature/login", TargetBranch: "main",
				SourceCommit: "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
				TargetCommit: "9d2f6c1e0a7b4e3f8c5d1a2b3c4d5e6f7a8b9c0d",
			},
			Sender: "arn:aws:iam::123456789012:user/jane-doe", Message: "Add login form",
			DeliveryID: "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60",
		}},
		{file: "comment_on_pull_request.json", status: 202, ignored: `"CodeCommit Comment on Pull Request" events start nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h, fake, _ := newTestHandler(t, testConfig("widget"))
			status, resp := serve(t, h, newDelivery(readTestdata(t, tt.file)))
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.ignored, resp.Ignored)
			assert.Empty(t, resp.Error)
			calls := withoutDeadlines(t, fake.Calls())
			if tt.pipeline == "" {
				assert.Empty(t, calls)
				assert.Empty(t, resp.Started)
				return
			}
			require.Equal(t, []startCall{{Pipeline: tt.pipeline, Event: tt.want}}, calls)
			assert.Equal(t, []intake.StartedRun{{Pipeline: tt.pipeline, WorkflowID: "kiln/" + tt.pipeline + "/" + tt.want.DeliveryID}}, resp.Started)
		})
	}
}

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

// TestHandlerRedelivery sends one event twice, as EventBridge does when it
// retries: the retry keeps the event id, so it reports the run as a duplicate.
func TestHandlerRedelivery(t *testing.T) {
	h, fake, _ := newTestHandler(t, testConfig("widget"))
	body := readTestdata(t, "branch_updated.json")
	status, first := serve(t, h, newDelivery(body))
	require.Equal(t, http.StatusOK, status)
	status, second := serve(t, h, newDelivery(body))
	require.Equal(t, http.StatusOK, status)

	id := "kiln/widget/branch/6f1c2a0e-3b7d-4c55-9e2a-0d8b1f4e7a31"
	assert.Equal(t, []intake.StartedRun{{Pipeline: "widget/branch", WorkflowID: id}}, first.Started)
	assert.Equal(t, []intake.StartedRun{{Pipeline: "widget/branch", WorkflowID: id, Duplicate: true}}, second.Started)
	calls := fake.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, calls[0].Event.DeliveryID, calls[1].Event.DeliveryID)
}

// TestHandlerShellMetacharacters checks that a branch name full of shell
// syntax, which git and CodeCommit allow, reaches the Event byte for byte.
func TestHandlerShellMetacharacters(t *testing.T) {
	const branch = "x/$(touch${IFS}pwned);`id`|&>'\"*"
	body := editEvent(t, "branch_updated.json", func(ev map[string]any) {
		d := detailOf(ev)
		d["referenceName"] = branch
		d["referenceFullName"] = "refs/heads/" + branch
	})
	cfg := testConfig("widget")
	cfg.Pipelines[0].Triggers.Branch = []string{"x/*"}
	h, fake, _ := newTestHandler(t, cfg)
	status, resp := serve(t, h, newDelivery(body))
	require.Equal(t, http.StatusOK, status, resp.Error)
	calls := fake.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, branch, calls[0].Event.Branch)
	assert.Equal(t, "refs/heads/"+branch, calls[0].Event.Ref)
	assert.Equal(t, branch, calls[0].Event.RefLabel())
}

// TestHandlerNoPipeline answers 202 when the repository is known but no
// pipeline fires.
func TestHandlerNoPipeline(t *testing.T) {
	cfg := testConfig("widget")
	cfg.Pipelines = cfg.Pipelines[1:] // no branch pipeline
	h, fake, _ := newTestHandler(t, cfg)
	status, resp := serve(t, h, newDelivery(readTestdata(t, "branch_updated.json")))
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, "no pipeline of repo widget is triggered by branch main", resp.Ignored)
	assert.Empty(t, fake.Calls())
}

// TestHandlerStarterError answers 500, so EventBridge retries, when a run
// cannot be started.
func TestHandlerStarterError(t *testing.T) {
	h, fake, _ := newTestHandler(t, testConfig("widget"))
	fake.Err = errors.New("temporal unavailable")
	status, resp := serve(t, h, newDelivery(readTestdata(t, "pull_request_created.json")))
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, "pipeline widget/review: temporal unavailable", resp.Error)
	assert.Empty(t, resp.Started)
}

// TestHandlerStartDeadline checks runs are started under startTimeout, inside
// EventBridge's 5 second limit.
func TestHandlerStartDeadline(t *testing.T) {
	h, fake, _ := newTestHandler(t, testConfig("widget"))
	before := time.Now()
	status, _ := serve(t, h, newDelivery(readTestdata(t, "branch_updated.json")))
	require.Equal(t, http.StatusOK, status)
	calls := fake.Calls()
	require.Len(t, calls, 1)
	assert.WithinDuration(t, before.Add(startTimeout), calls[0].Deadline, time.Second)
	assert.Less(t, startTimeout, 5*time.Second)
}

// TestHandlerLogs checks a delivery is logged with its identity, and that
// neither a right nor a wrong token is ever logged.
func TestHandlerLogs(t *testing.T) {
	h, _, logs := newTestHandler(t, testConfig("widget"))
	serve(t, h, newDelivery(readTestdata(t, "branch_updated.json")))
	r := newDelivery(readTestdata(t, "branch_updated.json"))
	r.Header.Set(TokenHeader, "wrong-token-8d2e")
	serve(t, h, r)
	assert.Contains(t, logs.String(), `"delivery":"6f1c2a0e-3b7d-4c55-9e2a-0d8b1f4e7a31"`)
	assert.Contains(t, logs.String(), `"repo":"widget"`)
	assert.Contains(t, logs.String(), `"ref":"refs/heads/main"`)
	assert.NotContains(t, logs.String(), testToken)
	assert.NotContains(t, logs.String(), "wrong-token-8d2e")
}

// TestMuxRoutesCodeCommit checks starter.NewMux mounts the handler at
// /hooks/codecommit.
func TestMuxRoutesCodeCommit(t *testing.T) {
	h, fake, _ := newTestHandler(t, testConfig("widget"))
	gh := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("GitHub handler reached") })
	mux := starter.NewMux(starter.Hooks{"github": gh, "codecommit": h}, starter.NewHealth())
	status, resp := serve(t, mux, newDelivery(readTestdata(t, "branch_updated.json")))
	assert.Equal(t, http.StatusOK, status)
	assert.Len(t, resp.Started, 1)
	assert.Len(t, fake.Calls(), 1)

	rec := httptest.NewRecorder()
	starter.NewMux(starter.Hooks{"github": gh}, starter.NewHealth()).ServeHTTP(rec, newDelivery(readTestdata(t, "branch_updated.json")))
	assert.Equal(t, http.StatusNotFound, rec.Code, "without the codecommit hook nothing is mounted there")
}
