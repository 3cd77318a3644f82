package report

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const commentsPath = "/repos/o/r/issues/7/comments"

// containsMarker narrows m to requests whose body carries runID's marker.
func containsMarker(m matcher, runID string) matcher {
	return func(req *http.Request, body []byte) bool {
		return m(req, body) && strings.Contains(string(body), Marker(runID))
	}
}

func runningRun() Run {
	run := testRun()
	run.Stages = []Stage{
		{Name: "build", State: "succeeded", Duration: 83 * time.Second},
		{Name: "test", State: "running"},
	}
	return run
}

func TestUpsertCommentCreatesOnFirstRun(t *testing.T) {
	r, reg := newTestReporter(t, "")
	reg.register("list", rest("GET", commentsPath, q("per_page=100")),
		// Another run's marker shares a prefix with ours and must not match.
		jsonResponse(http.StatusOK, []map[string]any{{"id": 9, "body": Marker("kiln/p/d-10") + "\nold"}}))
	reg.register("create", containsMarker(rest("POST", commentsPath, q("")), "kiln/p/d-1"),
		jsonResponse(http.StatusCreated, map[string]any{"id": 555}))

	id, err := r.UpsertComment(context.Background(), runningRun())
	require.NoError(t, err)
	require.EqualValues(t, 555, id)

	require.Equal(t, []string{"GET " + commentsPath + "?per_page=100", "POST " + commentsPath}, reg.calls())
	sent := decode(t, reg.all()[1].Body)
	require.Equal(t, map[string]any{"body": CommentBody(runningRun())}, sent)
	for _, req := range reg.all() {
		require.Equal(t, "Bearer "+testToken, req.Header.Get("Authorization"))
	}

	body := sent["body"].(string)
	require.True(t, strings.HasPrefix(body, "<!-- kiln:run:kiln/p/d-1 -->\n"), body)
	require.Contains(t, body, "| Stage | State | Duration |\n|---|---|---|\n")
	require.Contains(t, body, "| build | ✅ succeeded | 1m23s |\n")
	require.Contains(t, body, "| test | 🔄 running | — |\n")
	require.Contains(t, body, "**Outcome:** 🔄 running · [view run `kiln/p/d-1`](http://temporal.local/")
	require.NotContains(t, body, "Log tail")
}

func TestUpsertCommentEditsTheRunsCommentOnPageTwo(t *testing.T) {
	r, reg := newTestReporter(t, "")
	next := `<https://api.github.com/repositories/1/issues/7/comments?page=2&per_page=100>; rel="next", ` +
		`<https://api.github.com/repositories/1/issues/7/comments?page=2&per_page=100>; rel="last"`
	reg.register("page 1", rest("GET", commentsPath, q("per_page=100")),
		jsonResponse(http.StatusOK, []map[string]any{{"id": 1, "body": "lgtm"}}, "Link", next))
	reg.register("page 2", rest("GET", commentsPath, q("page=2&per_page=100")),
		jsonResponse(http.StatusOK, []map[string]any{
			{"id": 2, "body": "ship it"},
			{"id": 555, "body": Marker("kiln/p/d-1") + "\nstale"},
		}))
	run := runningRun()
	run.Stages[1] = Stage{Name: "test", State: "succeeded", Duration: 4 * time.Second}
	run.Outcome = "succeeded"
	reg.register("edit", withJSON(rest("PATCH", "/repos/o/r/issues/comments/555", q("")), map[string]any{"body": CommentBody(run)}),
		jsonResponse(http.StatusOK, map[string]any{"id": 555}))

	id, err := r.UpsertComment(context.Background(), run)
	require.NoError(t, err)
	require.EqualValues(t, 555, id)
	require.Equal(t, []string{
		"GET " + commentsPath + "?per_page=100",
		"GET " + commentsPath + "?page=2&per_page=100",
		"PATCH /repos/o/r/issues/comments/555",
	}, reg.calls())
	require.Contains(t, CommentBody(run), "**Outcome:** ✅ succeeded")
}

func TestUpsertCommentFailureShowsLogTailInOneCodeBlock(t *testing.T) {
	run := runningRun()
	run.Stages[1] = Stage{Name: "test", State: "failed", Duration: 9 * time.Second, Error: "make test: exit status 2"}
	run.Outcome = "failed"
	tail := "--- FAIL: TestX\n    want ```go\n```\nfmt.Println(1)\n````\nFAIL\n"
	run.LogTail = tail

	r, reg := newTestReporter(t, "")
	reg.register("list", rest("GET", commentsPath, nil), jsonResponse(http.StatusOK, []map[string]any{}))
	reg.register("create", withJSON(rest("POST", commentsPath, nil), map[string]any{"body": CommentBody(run)}),
		jsonResponse(http.StatusCreated, map[string]any{"id": 556}))
	_, err := r.UpsertComment(context.Background(), run)
	require.NoError(t, err)

	body := CommentBody(run)
	require.Contains(t, body, "| test | ❌ failed | 9s |\n")
	require.Contains(t, body, "**test failed:** ` make test: exit status 2 `\n")
	require.Contains(t, body, "**Outcome:** ❌ failed")
	// The tail's own ``` and ```` cannot close the block: the fence is longer.
	fence, inside := fencedBlock(t, body)
	require.Equal(t, "`````", fence)
	require.Equal(t, strings.TrimRight(tail, "\n"), inside)
}

// fencedBlock finds the first fenced code block in md the way CommonMark
// does (a closing fence is a line of at least as many backticks) and
// returns its fence and contents.
func fencedBlock(t *testing.T, md string) (fence, inside string) {
	t.Helper()
	lines := strings.Split(md, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "```") || strings.Trim(l, "`") != "" {
			continue
		}
		for j := i + 1; j < len(lines); j++ {
			if c := lines[j]; strings.Trim(c, "`") == "" && len(c) >= len(l) {
				return l, strings.Join(lines[i+1:j], "\n")
			}
		}
		t.Fatalf("code block opened by %q is never closed:\n%s", l, md)
	}
	t.Fatalf("no code block in:\n%s", md)
	return "", ""
}

func TestUpsertCommentGiteaBaseURL(t *testing.T) {
	r, reg := newTestReporter(t, "http://gitea.local/api/v1/")
	reg.register("list", rest("GET", "/api/v1"+commentsPath, q("per_page=100")), jsonResponse(http.StatusOK, []map[string]any{}))
	reg.register("create", containsMarker(rest("POST", "/api/v1"+commentsPath, nil), "kiln/p/d-1"),
		jsonResponse(http.StatusCreated, map[string]any{"id": 12}))
	id, err := r.UpsertComment(context.Background(), runningRun())
	require.NoError(t, err)
	require.EqualValues(t, 12, id)
	for _, req := range reg.all() {
		require.Equal(t, "gitea.local", req.Host)
	}
}

func TestUpsertCommentNeedsAPullRequest(t *testing.T) {
	r, reg := newTestReporter(t, "")
	run := runningRun()
	run.PR = 0
	_, err := r.UpsertComment(context.Background(), run)
	require.True(t, errors.Is(err, ErrInvalid), "%v", err)
	require.Empty(t, reg.calls())
}

func TestCommentBodyKeepsTableCellsOnOneLine(t *testing.T) {
	run := testRun()
	run.Stages = []Stage{{Name: "a|b\nc", State: "pending"}}
	require.Contains(t, CommentBody(run), "| a\\|b c | ⏳ pending | — |\n")
}

// TestUpsertCommentIgnoresAQuotedMarker: a comment whose build output
// quotes this run's marker is another run's; this run posts its own.
func TestUpsertCommentIgnoresAQuotedMarker(t *testing.T) {
	r, reg := newTestReporter(t, "")
	quoted := Marker("kiln/p/d-9") + "\n```\n" + Marker("kiln/p/d-1") + "\n```\n"
	reg.register("list", rest("GET", commentsPath, nil), jsonResponse(http.StatusOK, []map[string]any{{"id": 9, "body": quoted}}))
	reg.register("create", containsMarker(rest("POST", commentsPath, nil), "kiln/p/d-1"),
		jsonResponse(http.StatusCreated, map[string]any{"id": 10}))
	id, err := r.UpsertComment(context.Background(), runningRun())
	require.NoError(t, err)
	require.EqualValues(t, 10, id, "not comment 9")
}
