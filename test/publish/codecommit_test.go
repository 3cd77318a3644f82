package publish

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/starter/codecommit"
	"github.com/kiln-ci/kiln/starter/intake"
)

// fakeCodeCommit answers the three pull-request comment calls of
// CodeCommit's JSON API, keeping the comments; moto does not implement them.
type fakeCodeCommit struct {
	mu       sync.Mutex
	comments []map[string]any
	ops      []string
	posts    []map[string]any
}

func (f *fakeCodeCommit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	f.ops = append(f.ops, op)
	var in map[string]any
	_ = json.NewDecoder(r.Body).Decode(&in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "GetCommentsForPullRequest":
		_ = json.NewEncoder(w).Encode(map[string]any{"commentsForPullRequestData": []any{map[string]any{"comments": f.comments}}})
	case "PostCommentForPullRequest":
		f.posts = append(f.posts, in)
		c := map[string]any{"commentId": "c-1", "content": in["content"]}
		f.comments = append(f.comments, c)
		_ = json.NewEncoder(w).Encode(map[string]any{"comment": c})
	case "UpdateComment":
		f.comments[0]["content"] = in["content"]
		_ = json.NewEncoder(w).Encode(map[string]any{"comment": f.comments[0]})
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"InvalidActionException"}`)
	}
}

// TestCodeCommitReviewFromEventBridge: a CodeCommit pull request, delivered
// by EventBridge to /hooks/codecommit, starts the review pipeline at the
// source commit, and the run keeps one comment on the pull request, on the
// destination and source commits.
func TestCodeCommitReviewFromEventBridge(t *testing.T) {
	secrets, err := it.cfg.WebhookSecrets()
	require.NoError(t, err)
	hooks := httptest.NewServer(codecommit.NewHandler(it.cfg, secrets, it.runs, zerolog.Nop()))
	defer hooks.Close()
	body := `{"version":"0","id":"eb-` + it.head[:8] + `","detail-type":"CodeCommit Pull Request State Change",
	"source":"aws.codecommit","account":"123456789012","time":"2026-11-22T07:00:00Z","region":"us-east-2",
	"resources":["arn:aws:codecommit:us-east-2:123456789012:widget"],
	"detail":{"event":"pullRequestCreated","pullRequestId":"7","repositoryNames":["widget"],
	"sourceReference":"refs/heads/feature","destinationReference":"refs/heads/main",
	"sourceCommit":"` + it.head + `","destinationCommit":"0000000000000000000000000000000000000001",
	"title":"Add $(whoami)","pullRequestStatus":"Open","isMerged":"False",
	"author":"arn:aws:iam::123456789012:user/dev","callerUserArn":"arn:aws:iam::123456789012:user/dev"}}`
	req, err := http.NewRequest(http.MethodPost, hooks.URL, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Kiln-Token", hookSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var answer intake.Response
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%+v", answer)
	require.Len(t, answer.Started, 1)
	assert.Equal(t, "cc-review", answer.Started[0].Pipeline)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	require.NoError(t, it.temporal.Client.GetWorkflow(ctx, answer.Started[0].WorkflowID, "").Get(ctx, nil))

	f := it.codecommit
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.posts, 1, "one comment per run: %v", f.ops)
	assert.Equal(t, "7", f.posts[0]["pullRequestId"])
	assert.Equal(t, "widget", f.posts[0]["repositoryName"])
	assert.Equal(t, "0000000000000000000000000000000000000001", f.posts[0]["beforeCommitId"])
	assert.Equal(t, it.head, f.posts[0]["afterCommitId"])
	assert.Contains(t, f.ops, "UpdateComment")
	assert.Contains(t, f.comments[0]["content"], "✅ succeeded")
}
