package report

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/junit"
)

// failedRun is a run whose build failed with err, reported as the activity
// does: the error is also the log tail.
func failedRun(err string) Run {
	return Run{Repo: "o/r", Pipeline: "p", RunID: "kiln/p/d-1", PR: 7, Outcome: "failed", LogTail: err,
		Stages: []Stage{{Name: "build", State: "failed", Error: err}, {Name: "test", State: "cancelled"}}}
}

// hugeError is a Packer failure of about 80 KB, with multi-byte characters
// so that bytes and characters differ, ending in the line that matters.
func hugeError() string {
	var b strings.Builder
	b.WriteString("packer build: exit status 1\n")
	for b.Len() < 80<<10 {
		b.WriteString("==> amazon-ebs: provisioning… ✓ step output ünïcödé\n")
	}
	b.WriteString("Build 'amazon-ebs' errored: the last line\n")
	return b.String()
}

// TestCommentBodyFitsGitHubLimit: an 80 KB error, which once appeared in
// full twice and drew a 422, leaves a body under the limit with the error's
// first line as the summary and the end of the log in a closed code block.
func TestCommentBodyFitsGitHubLimit(t *testing.T) {
	run := failedRun(hugeError())
	body := CommentBody(run)
	require.LessOrEqual(t, utf8.RuneCountInString(body), maxComment)
	assert.Greater(t, utf8.RuneCountInString(body), maxComment-200, "the tail uses the room there is")
	assert.True(t, strings.HasPrefix(body, Marker(run.RunID)+"\n"))
	assert.Contains(t, body, "| build | ❌ failed | — |\n")
	assert.Contains(t, body, "\n**build failed:** ` packer build: exit status 1 … `\n")

	_, inside := fencedBlock(t, body)
	assert.True(t, strings.HasPrefix(inside, cutMark+"==> amazon-ebs: provisioning"), "cut at a line start: %.80q", inside)
	assert.True(t, strings.HasSuffix(inside, "\nBuild 'amazon-ebs' errored: the last line"), "the end is kept")
	assert.True(t, strings.HasSuffix(body, "```\n\n</details>\n"), "the block and details are closed")
}

// TestCommentBodyLongFirstLine: a one-line error of any length is cut on
// the summary line to maxErrorSummary characters.
func TestCommentBodyLongFirstLine(t *testing.T) {
	run := failedRun(strings.Repeat("x", 100<<10))
	run.Outcome = "" // still running: no log tail yet
	body := CommentBody(run)
	want := "\n**build failed:** ` " + strings.Repeat("x", maxErrorSummary-1) + "… `\n"
	assert.True(t, strings.HasSuffix(body, want), "%.200q", body[len(body)-min(len(body), 400):])
	assert.NotContains(t, body, "Log tail")
}

// TestCommentBodyBackticksCannotEscape: a tail that is nothing but backticks
// needs a fence longer than itself; the body still fits and the block closes
// after all of the kept text.
func TestCommentBodyBackticksCannotEscape(t *testing.T) {
	run := failedRun("make: exit 2")
	run.LogTail = strings.Repeat("`", 70000) + "\n" + strings.Repeat("``` x\n", 5000)
	body := CommentBody(run)
	require.LessOrEqual(t, utf8.RuneCountInString(body), maxComment)
	fence, inside := fencedBlock(t, body)
	assert.Greater(t, len(fence), 3)
	assert.True(t, strings.HasSuffix(inside, "``` x"), "the block ends after the tail's last line")
	assert.True(t, strings.HasSuffix(body, fence+"\n\n</details>\n"))
}

// TestCommentBodyErrorCannotMention: what a build printed is shown
// literally in a code span, so it cannot ping a team, link an issue or add
// markup, whatever backticks it holds.
func TestCommentBodyErrorCannotMention(t *testing.T) {
	for err, want := range map[string]string{
		"deploy failed, cc @org/team #12 <img src=x>": "` deploy failed, cc @org/team #12 <img src=x> `",
		"`@org/team` and ``@org/ops``":                "``` `@org/team` and ``@org/ops`` ```",
		"ends in a backtick `":                        "`` ends in a backtick ` ``",
		"old mac line\r# @org/team heading\r\n":       "` old mac line … `",
		"one line\r\n":                                "` one line `",
	} {
		body := CommentBody(failedRun(err))
		assert.Contains(t, body, "\n**build failed:** "+want+"\n", err)
	}
}

// TestCommentBodyMentionsStayInCode: outside code spans and blocks, as
// CommonMark finds them, the body has no "@" from the build.
func TestCommentBodyMentionsStayInCode(t *testing.T) {
	run := failedRun("failed @org/team\n@org/ops see ```\n```` @org/sec\n")
	body := CommentBody(run)
	_, inside := fencedBlock(t, body)
	outside := strings.Replace(body, inside, "", 1)
	for _, line := range strings.Split(outside, "\n") {
		if strings.HasPrefix(line, "**build failed:** ") {
			span := strings.TrimPrefix(line, "**build failed:** ")
			require.True(t, strings.HasPrefix(span, "` ") && strings.HasSuffix(span, " `"), line)
			require.NotContains(t, span[1:len(span)-1], "`", "one code span, nothing after it")
			continue
		}
		assert.NotContains(t, line, "@", "a mention outside code: %q", line)
	}
}

// TestLastRunesKeepsALongLastLine: cutting at a line start must not throw
// away a last line that is longer than the room.
func TestLastRunesKeepsALongLastLine(t *testing.T) {
	s := "early\n" + strings.Repeat("y", 500) + "\n"
	got := lastRunes(s, 100)
	assert.LessOrEqual(t, utf8.RuneCountInString(got), 100)
	assert.True(t, strings.HasPrefix(got, cutMark+"yyy"), got)
	assert.Equal(t, s, lastRunes(s, len(s)), "nothing cut when it fits")
}

// TestCommentBodyTooManyStages: when the stages alone overflow, whole lines
// are dropped from the end, so no code span is left open.
func TestCommentBodyTooManyStages(t *testing.T) {
	run := failedRun("x")
	run.Stages = nil
	for i := 0; i < 100; i++ {
		run.Stages = append(run.Stages, Stage{Name: "s", State: "failed", Error: strings.Repeat("@org/team ", 40)})
	}
	body := fitComment(run, codeCommitMaxContent)
	require.LessOrEqual(t, utf8.RuneCountInString(body), codeCommitMaxContent)
	assert.True(t, strings.HasPrefix(body, Marker(run.RunID)+"\n"))
	assert.True(t, strings.HasSuffix(body, "\n…"), "%q", body[len(body)-50:])
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "**s failed:** ") {
			assert.True(t, strings.HasSuffix(line, " `"), "a span cut open: %q", line)
		}
	}
}

// testReports is a build's test reports: one with failures, written as a
// hostile test suite might, and one whose files were not found.
func testReports() []TestReport {
	unit := TestReport{Name: "unit", Format: buildspec.FormatJUnitXML, Files: []string{"target/TEST-a.xml"},
		Summary: junit.Summary{Total: 9, Passed: 5, Failed: 2, Errors: 1, Skipped: 1, Failures: []junit.Case{
			{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "divides", Message: "expected: <2> but was: <3>"},
			{Suite: "pytest", Class: "tests.test_api", Name: "test_post @org/team", Message: "cc @org/team `#12` <img src=x>"},
			{Name: "TestGet"},
		}}}
	e2e := TestReport{Name: "arn:aws:codebuild:eu-west-1:1:report-group/e2e", Format: buildspec.FormatJUnitXML,
		Error: `no files matched "e2e/*.xml"`}
	return []TestReport{unit, e2e}
}

// TestCommentBodyTests: each report has its counts on one line, and the
// failed tests are named with their messages, all of it in code spans.
func TestCommentBodyTests(t *testing.T) {
	run := failedRun("make test: exit 1")
	run.Tests = testReports()
	body := CommentBody(run)
	assert.Contains(t, body, "\n**build failed:** ` make test: exit 1 `\n\n**Tests**\n\n"+
		"- ` unit `: 5 passed, 2 failed, 1 errors, 1 skipped\n"+
		"- ` arn:aws:codebuild:eu-west-1:1:report-group/e2e `: 0 passed, 0 failed, 0 errors, 0 skipped · ⚠️ ` no files matched \"e2e/*.xml\" `\n"+
		"\n**Failed tests**\n\n"+
		"- ` com.acme.MathTest.divides `: ` expected: <2> but was: <3> `\n"+
		"- ` pytest/tests.test_api.test_post @org/team `: `` cc @org/team `#12` <img src=x> ``\n"+
		"- ` TestGet `\n"+
		"\n<details open><summary>Log tail</summary>", body)

	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "- ") {
			assert.NotRegexp(t, "@[^`]*$", strings.TrimSuffix(line, "`"), "an @ after the last code span: %q", line)
		}
	}
	assert.NotContains(t, CommentBody(failedRun("x")), "**Tests**", "no reports, no section")
}

// TestCommentBodyNamesAtMostTenFailedTests: across reports, ten failed
// tests are named and the rest counted.
func TestCommentBodyNamesAtMostTenFailedTests(t *testing.T) {
	run := failedRun("x")
	for range 2 {
		r := TestReport{Name: "r", Summary: junit.Summary{Total: 30, Failed: 20, Errors: 10}}
		for i := range junit.MaxFailures {
			r.Summary.Failures = append(r.Summary.Failures, junit.Case{Class: "C", Name: fmt.Sprint("t", i)})
		}
		run.Tests = append(run.Tests, r)
	}
	body := CommentBody(run)
	assert.Equal(t, maxFailedTests, strings.Count(body, "- ` C.t"))
	assert.Contains(t, body, "- ` C.t9 `\n- … and 50 more\n")
}

// TestCommentBodyTestsFitWithHugeLog: the log tail gives way to the tests.
func TestCommentBodyTestsFitWithHugeLog(t *testing.T) {
	run := failedRun(hugeError())
	run.Tests = testReports()
	body := CommentBody(run)
	require.LessOrEqual(t, utf8.RuneCountInString(body), maxComment)
	assert.Contains(t, body, "- ` TestGet `\n\n<details open><summary>Log tail</summary>")
	assert.True(t, strings.HasSuffix(body, "\nBuild 'amazon-ebs' errored: the last line\n```\n\n</details>\n"))
}
