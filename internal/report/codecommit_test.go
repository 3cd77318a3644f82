package report

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeCodeCommit answers CodeCommit's JSON API as AWS does, for the three
// calls the reporter makes, keeping the comments it was given; moto does not
// implement pull-request comments. It records each call's operation and body.
type fakeCodeCommit struct {
	mu       sync.Mutex
	comments []map[string]any
	calls    []ccCall
	fail     string // an error code to answer every call with
	// hidden makes GetCommentsForPullRequest answer no comments, as when a
	// posted comment is not yet listed.
	hidden bool
	// tokens maps a ClientRequestToken to the comment it posted; a reuse
	// with other content is refused, as AWS does.
	tokens map[string]map[string]any
}

type ccCall struct {
	Op   string
	Body map[string]any
}

func (f *fakeCodeCommit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := r.Header.Get("X-Amz-Target")
	op = op[strings.LastIndex(op, ".")+1:]
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.calls = append(f.calls, ccCall{Op: op, Body: body})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if f.fail != "" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": f.fail, "message": "no"})
		return
	}
	switch op {
	case "GetCommentsForPullRequest":
		// One page per comment, to exercise pagination.
		page := 0
		if tok, ok := body["nextToken"].(string); ok {
			page = len(tok)
		}
		out := map[string]any{"commentsForPullRequestData": []any{}}
		if page < len(f.comments) && !f.hidden {
			out["commentsForPullRequestData"] = []any{map[string]any{"comments": []any{f.comments[page]}}}
			if page+1 < len(f.comments) {
				out["nextToken"] = strings.Repeat("x", page+1)
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case "PostCommentForPullRequest":
		tok, _ := body["clientRequestToken"].(string)
		if c, ok := f.tokens[tok]; ok {
			if c["content"] != body["content"] {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"__type": "IdempotencyParameterMismatchException"})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"comment": c})
			return
		}
		c := map[string]any{"commentId": "c-" + string(rune('a'+len(f.comments))), "content": body["content"]}
		f.comments = append(f.comments, c)
		if f.tokens == nil {
			f.tokens = map[string]map[string]any{}
		}
		f.tokens[tok] = maps.Clone(c)
		_ = json.NewEncoder(w).Encode(map[string]any{"comment": c})
	case "UpdateComment":
		for _, c := range f.comments {
			if c["commentId"] == body["commentId"] {
				c["content"] = body["content"]
				_ = json.NewEncoder(w).Encode(map[string]any{"comment": c})
				return
			}
		}
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "CommentDoesNotExistException"})
	}
}

func codeCommitClient(t *testing.T, f *fakeCodeCommit) *CodeCommit {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &CodeCommit{Client: codecommit.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})}
}

var ccPR = CodeCommitPR{Repository: "widget", BeforeCommit: "d1", AfterCommit: "s1"}

// TestCodeCommitCommentPostedOnceThenEdited: the first report posts the
// comment on the pull request's commits with a token derived from the run;
// later reports find it by its marker (past another run's comment, on the
// second page of comments) and edit it.
func TestCodeCommitCommentPostedOnceThenEdited(t *testing.T) {
	f := &fakeCodeCommit{comments: []map[string]any{{"commentId": "other", "content": Marker("p/pr-7/d-10") + "\nold"}}}
	c := codeCommitClient(t, f)
	run := Run{Repo: "widget", Pipeline: "p", RunID: "p/pr-7/d-1", PR: 7,
		Stages: []Stage{{Name: "build", State: "running"}}}

	id, err := c.UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err)
	assert.Equal(t, "c-b", id)
	require.Len(t, f.calls, 2) // the comments (one page), then the post
	post := f.calls[1]
	assert.Equal(t, "PostCommentForPullRequest", post.Op)
	assert.Equal(t, "7", post.Body["pullRequestId"])
	assert.Equal(t, "widget", post.Body["repositoryName"])
	assert.Equal(t, "d1", post.Body["beforeCommitId"])
	assert.Equal(t, "s1", post.Body["afterCommitId"])
	assert.Equal(t, commentToken(run.RunID, codeCommitBody(run)), post.Body["clientRequestToken"])
	assert.True(t, strings.HasPrefix(post.Body["content"].(string), Marker(run.RunID)))

	run.Stages[0].State, run.Outcome = "succeeded", "succeeded"
	again, err := c.UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err)
	assert.Equal(t, id, again)
	ops := []string{}
	for _, c := range f.calls[2:] {
		ops = append(ops, c.Op)
	}
	assert.Equal(t, []string{"GetCommentsForPullRequest", "GetCommentsForPullRequest", "UpdateComment"}, ops,
		"found on the second page, then edited")
	last := f.calls[len(f.calls)-1]
	assert.Equal(t, id, last.Body["commentId"])
	assert.Contains(t, last.Body["content"], "✅ succeeded")
	assert.Len(t, f.comments, 2, "one comment per run")
}

// TestCodeCommitBodyFitsItsLimit: a huge log tail is cut so the comment
// stays within CodeCommit's 10,240 characters, keeping the stage table.
func TestCodeCommitBodyFitsItsLimit(t *testing.T) {
	run := Run{RunID: "r", PR: 1, Outcome: "failed", LogTail: strings.Repeat("line of output\n", 5000) + "the last line\n",
		Stages: []Stage{{Name: "build", State: "failed", Error: "exit 1"}}}
	body := codeCommitBody(run)
	assert.LessOrEqual(t, len([]rune(body)), codeCommitMaxContent)
	assert.Greater(t, len([]rune(body)), codeCommitMaxContent-200, "the tail uses the room there is")
	assert.Contains(t, body, "| build |")
	assert.Contains(t, body, "\nthe last line\n```\n", "the tail's end is kept, in a closed block")
}

// TestCodeCommitRefusals: refusals are classified so the caller stops
// retrying them.
func TestCodeCommitRefusals(t *testing.T) {
	for code, want := range map[string]error{
		"AccessDeniedException":            ErrUnauthorized,
		"PullRequestDoesNotExistException": ErrNotFound,
		"InvalidPullRequestIdException":    ErrInvalid,
		// Only from a post whose token is tied to other content; it cannot
		// pass on a retry.
		"IdempotencyParameterMismatchException": ErrInvalid,
	} {
		c := codeCommitClient(t, &fakeCodeCommit{fail: code})
		_, err := c.UpsertComment(context.Background(), Run{RunID: "r", PR: 1}, ccPR)
		assert.True(t, errors.Is(err, want), "%s: %v", code, err)
	}
}

// TestCodeCommitPostWhenTheCommentIsNotFoundAgain: when the run's comment
// is not listed (yet), the next report posts again. A new body must not
// reuse the first post's token, which CodeCommit would refuse forever; the
// same body must, so a retried post returns the comment it made.
func TestCodeCommitPostWhenTheCommentIsNotFoundAgain(t *testing.T) {
	f := &fakeCodeCommit{hidden: true}
	c := codeCommitClient(t, f)
	run := Run{Repo: "widget", Pipeline: "p", RunID: "p/pr-7/d-1", PR: 7,
		Stages: []Stage{{Name: "build", State: "running"}}}
	first, err := c.UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err)

	again, err := c.UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err)
	assert.Equal(t, first, again, "the same report, retried, posts once")
	assert.Len(t, f.comments, 1)

	run.Stages[0].State, run.Outcome = "succeeded", "succeeded"
	_, err = c.UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err, "a later report is not refused for the first one's token")
	require.Len(t, f.comments, 2)
	assert.Contains(t, f.comments[1]["content"], "✅ succeeded")

	tok := commentToken(run.RunID, codeCommitBody(run))
	assert.Len(t, tok, 37)
	assert.NotEqual(t, commentToken(run.RunID, "a"), commentToken(run.RunID, "b"))
	assert.NotEqual(t, commentToken("r1", "a"), commentToken("r2", "a"))
}

// TestCodeCommitIgnoresAQuotedMarker: another run's comment that shows
// this run's marker in its build output is not this run's comment.
func TestCodeCommitIgnoresAQuotedMarker(t *testing.T) {
	run := Run{Repo: "widget", Pipeline: "p", RunID: "p/pr-7/d-1", PR: 7, Stages: []Stage{{Name: "build", State: "running"}}}
	other := Marker("p/pr-7/d-9") + "\n```\n" + Marker(run.RunID) + "\n```\n"
	f := &fakeCodeCommit{comments: []map[string]any{{"commentId": "other", "content": other}}}
	id, err := codeCommitClient(t, f).UpsertComment(context.Background(), run, ccPR)
	require.NoError(t, err)
	assert.NotEqual(t, "other", id)
	assert.Equal(t, other, f.comments[0]["content"], "the other run's comment is untouched")
}
