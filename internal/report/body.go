package report

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiln-ci/kiln/internal/buildspec"
)

// maxDescription is GitHub's limit on a commit status description.
const maxDescription = 140

// maxComment bounds a GitHub comment body, in characters. GitHub answers
// 422 to a body over 65,536 characters, and a refused report is permanent:
// the comment would go on saying "running". The margin is for hosts that
// count differently.
const maxComment = 60000

// maxFailedTests bounds the failed tests a comment names; the counts above
// them say how many there are in all.
const maxFailedTests = 10

// TestReport is one test report's results, as the build collected them.
type TestReport = buildspec.ReportResult

// maxErrorSummary bounds a failed stage's error on its summary line; the
// whole error is in the log tail.
const maxErrorSummary = 300

// statusStates maps a kiln stage state to a commit status state. A
// cancelled stage is "error": it did not fail, but it did not pass either.
var statusStates = map[string]string{
	"pending":   "pending",
	"waiting":   "pending",
	"running":   "pending",
	"succeeded": "success",
	"failed":    "failure",
	"cancelled": "error",
}

// stateEmoji prefixes a state in the comment so a reader sees it at a glance.
var stateEmoji = map[string]string{
	"pending":   "⏳",
	"waiting":   "✋",
	"running":   "🔄",
	"succeeded": "✅",
	"failed":    "❌",
	"cancelled": "🚫",
}

// statusContext names a stage's status: "kiln/<pipeline>/<stage>".
func statusContext(pipeline, stage string) string {
	return "kiln/" + pipeline + "/" + stage
}

// describeStage is the status description: stage.Error for a failure, a
// short sentence otherwise, on one line of at most maxDescription runes.
func describeStage(s Stage) string {
	var d string
	switch s.State {
	case "pending":
		d = "Waiting to start"
	case "waiting":
		d = "Waiting for approval: kiln approve, or comment /kiln approve <commit>"
	case "running":
		d = "Running"
	case "succeeded":
		d = "Succeeded"
		if s.Duration > 0 {
			d += " in " + formatDuration(s.Duration)
		}
	case "failed":
		d = strings.Join(strings.Fields(s.Error), " ")
		if d == "" {
			d = "Failed"
		}
	case "cancelled":
		d = "Cancelled"
	}
	return truncate(d, maxDescription)
}

// truncate shortens s to at most n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// formatDuration rounds to what a person reads: 850ms, 42s, 3m7s, 1h2m3s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// Marker is the hidden HTML comment that identifies a run's PR comment.
func Marker(runID string) string {
	return "<!-- kiln:run:" + runID + " -->"
}

// CommentBody renders a run's pull-request comment in markdown: the marker,
// a table of stages, the outcome with a link to the run, and for a failure
// the first line of each failed stage's error and the log tail in a fenced
// code block. It is at most maxComment characters long.
func CommentBody(run Run) string {
	return fitComment(run, maxComment)
}

// fitComment renders the comment in at most limit characters. The log tail
// gives way first, cut from its top so that its end, where a failure shows,
// stays; only if the rest alone is too long is the body cut at its end,
// which keeps the marker that finds the comment again, and at a line's end,
// which keeps each error summary's code span closed.
func fitComment(run Run, limit int) string {
	head := commentHead(run)
	if run.Outcome == "failed" && strings.TrimSpace(run.LogTail) != "" {
		head += logTailSection(run.LogTail, limit-utf8.RuneCountInString(head))
	}
	if utf8.RuneCountInString(head) <= limit {
		return head
	}
	head = string([]rune(head)[:limit-1])
	return head[:strings.LastIndexByte(head, '\n')+1] + "…"
}

// commentHead is the comment up to the log tail.
func commentHead(run Run) string {
	var b strings.Builder
	b.WriteString(Marker(run.RunID) + "\n")
	fmt.Fprintf(&b, "### kiln · %s\n\n", cell(run.Pipeline))
	b.WriteString("| Stage | State | Duration |\n|---|---|---|\n")
	for _, s := range run.Stages {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell(s.Name), withEmoji(s.State), formatDuration(s.Duration))
	}
	b.WriteString("\n")
	outcome := "🔄 running"
	if run.Outcome != "" {
		outcome = withEmoji(run.Outcome)
	}
	fmt.Fprintf(&b, "**Outcome:** %s", outcome)
	if run.URL != "" {
		fmt.Fprintf(&b, " · [view run `%s`](%s)", strings.ReplaceAll(run.RunID, "`", "'"), run.URL)
	}
	b.WriteString("\n")
	for _, s := range run.Stages {
		if s.State == "waiting" {
			fmt.Fprintf(&b, "\n**Waiting for approval (%s).** Nothing more of this run happens until someone allowed to approves it: "+
				"after reviewing %s, comment `/kiln approve %s` here, or run `kiln approve %s`.\n",
				cell(s.Name), cell(shortCommit(run.Commit)), cell(shortCommit(run.Commit)), strings.ReplaceAll(run.RunID, "`", "'"))
		}
		if s.State == "failed" && strings.TrimSpace(s.Error) != "" {
			fmt.Fprintf(&b, "\n**%s failed:** %s\n", cell(s.Name), codeSpan(errorSummary(s.Error)))
		}
	}
	b.WriteString(testsSection(run.Tests))
	return b.String()
}

// testsSection has a line of counts per test report and names the first
// failed tests. Every name and message a test tool wrote is in a code span,
// so a test cannot mention people or add markup to the comment.
func testsSection(reports []TestReport) string {
	if len(reports) == 0 {
		return ""
	}
	var b, failures strings.Builder
	b.WriteString("\n**Tests**\n\n")
	failed, shown := 0, 0
	for _, r := range reports {
		s := r.Summary
		fmt.Fprintf(&b, "- %s: %d passed, %d failed, %d errors, %d skipped", codeSpan(errorSummary(r.Name)), s.Passed, s.Failed, s.Errors, s.Skipped)
		if r.Error != "" {
			b.WriteString(" · ⚠️ " + codeSpan(errorSummary(r.Error)))
		}
		b.WriteString("\n")
		failed += s.Failed + s.Errors
		for _, c := range s.Failures[:min(len(s.Failures), maxFailedTests-shown)] {
			title := c.Title()
			if title == "" {
				title = "(unnamed test)"
			}
			fmt.Fprintf(&failures, "- %s", codeSpan(errorSummary(title)))
			if m := errorSummary(c.Message); m != "" {
				failures.WriteString(": " + codeSpan(m))
			}
			failures.WriteString("\n")
			shown++
		}
	}
	if failed > 0 {
		b.WriteString("\n**Failed tests**\n\n" + failures.String())
		if failed > shown {
			fmt.Fprintf(&b, "- … and %d more\n", failed-shown)
		}
	}
	return b.String()
}

// The log tail's section around its code block.
const (
	tailOpen  = "\n<details open><summary>Log tail</summary>\n\n"
	tailClose = "\n</details>\n"
)

// logTailSection is the log tail's section in at most room characters, its
// text cut from the top to fit; "" when not even a line fits.
func logTailSection(text string, room int) string {
	keep := room - utf8.RuneCountInString(tailOpen+codeBlock("")+tailClose)
	for keep > 0 {
		kept := lastRunes(text, keep)
		if strings.TrimSpace(kept) == "" {
			return ""
		}
		s := tailOpen + codeBlock(kept) + tailClose
		over := utf8.RuneCountInString(s) - room
		if over <= 0 {
			return s
		}
		// Only a fence grown by backticks in the text overflows; a shorter
		// text has no longer runs, so this ends.
		keep -= over
	}
	return ""
}

// errorSummary is the first non-blank line of a stage's error, at most
// maxErrorSummary characters, ending in "…" when there is more. A carriage
// return ends a line too: in markdown it does, and a line after it could
// start a heading that ends the code span the summary is shown in.
func errorSummary(err string) string {
	err = strings.TrimSpace(err)
	first, more := err, false
	if i := strings.IndexAny(err, "\r\n"); i >= 0 {
		first, more = strings.TrimSpace(err[:i]), true // err was trimmed: more follows
	}
	if more && utf8.RuneCountInString(first) < maxErrorSummary {
		first += " …"
	}
	return truncate(first, maxErrorSummary)
}

// withEmoji is "✅ succeeded"; an unknown state is shown as it is.
func withEmoji(state string) string {
	if e, ok := stateEmoji[state]; ok {
		return e + " " + state
	}
	return cell(state)
}

// cell makes s safe inside one markdown table cell: one line, no bare pipes.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// codeBlock fences text so nothing in it can close the block: the fence is
// one backtick longer than the longest run of backticks in text (CommonMark
// closes a fence only with at least as many), and the text stays byte-exact
// for copying.
func codeBlock(text string) string {
	fence := strings.Repeat("`", max(3, longestBacktickRun(text)+1))
	return fence + "\n" + strings.TrimRight(text, "\n") + "\n" + fence + "\n"
}

// codeSpan shows one line of text literally, so that what a build printed
// cannot mention people (@org/team), link issues, or add markdown or HTML:
// its delimiters are longer than any run of backticks in it, which closes a
// code span only with exactly as many, and the spaces inside them, which
// CommonMark strips, keep a backtick at either end of text from joining them.
func codeSpan(text string) string {
	delim := strings.Repeat("`", longestBacktickRun(text)+1)
	return delim + " " + text + " " + delim
}

func longestBacktickRun(text string) int {
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// cutMark starts a log tail whose top was cut.
const cutMark = "[… earlier lines cut …]\n"

// lastRunes keeps the end of s in at most n characters, from the start of a
// line when one begins in what is kept, after cutMark when anything was cut.
func lastRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	n -= utf8.RuneCountInString(cutMark)
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	s = string(r[len(r)-n:])
	if i := strings.IndexByte(s, '\n'); i >= 0 && strings.TrimSpace(s[i+1:]) != "" {
		s = s[i+1:]
	}
	return cutMark + s
}

// shortCommit is the first 12 characters of a commit SHA, as people quote it.
func shortCommit(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
