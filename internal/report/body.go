package report

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDescription is GitHub's limit on a commit status description.
const maxDescription = 140

// maxLogTail bounds the log tail in a comment; GitHub rejects comment
// bodies over 65536 characters.
const maxLogTail = 32 << 10

// statusStates maps a kiln stage state to a commit status state. A
// cancelled stage is "error": it did not fail, but it did not pass either.
var statusStates = map[string]string{
	"pending":   "pending",
	"running":   "pending",
	"succeeded": "success",
	"failed":    "failure",
	"cancelled": "error",
}

// stateEmoji prefixes a state in the comment so a reader sees it at a glance.
var stateEmoji = map[string]string{
	"pending":   "⏳",
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
// the log tail in a fenced code block.
func CommentBody(run Run) string {
	return commentBody(run, maxLogTail)
}

// commentBody is CommentBody with the log tail cut to maxTail bytes, for
// hosts with smaller comments.
func commentBody(run Run, maxTail int) string {
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
		if s.State == "failed" && s.Error != "" {
			fmt.Fprintf(&b, "\n**%s failed:** %s\n", cell(s.Name), cell(s.Error))
		}
	}
	if run.Outcome == "failed" && strings.TrimSpace(run.LogTail) != "" {
		b.WriteString("\n<details open><summary>Log tail</summary>\n\n")
		b.WriteString(codeBlock(lastBytes(run.LogTail, maxTail)))
		b.WriteString("\n</details>\n")
	}
	return b.String()
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
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "\n" + strings.TrimRight(text, "\n") + "\n" + fence + "\n"
}

// lastBytes keeps the end of s, at most n bytes, cut at a line boundary.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	for len(s) > 0 && !utf8.RuneStart(s[0]) {
		s = s[1:]
	}
	return "[… earlier lines cut …]\n" + s
}
