package notify

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kiln-ci/kiln/internal/buildspec"
)

// maxLogTail bounds the log kept in a Body: enough to see a failure, small
// enough for SNS (256 KiB per message) and any mail server.
const maxLogTail = 16 << 10

// Bounds on the tests part of a Body, which is built from what test tools
// wrote: a line, the reports listed, the failed tests named.
const (
	maxTestLine    = 300
	maxTestReports = 20
	maxFailedTests = 10
)

// TestReport is one test report's results, as the build collected them.
type TestReport = buildspec.ReportResult

// shortCommitLen is how much of a commit SHA a subject shows, as git does.
const shortCommitLen = 7

// Subject is a one-line summary of m, e.g.
// "[kiln] app main: failed at test (0123abc)". It never contains a line
// break or other control character, so it is safe as a header value.
func Subject(m Message) string {
	var b strings.Builder
	b.WriteString("[kiln] ")
	name := m.Pipeline
	if name == "" {
		name = m.Repo
	}
	if name != "" {
		b.WriteString(name)
		b.WriteString(" ")
	}
	if ref := shortRef(m.Ref); ref != "" {
		b.WriteString(ref)
	}
	b.WriteString(": ")
	b.WriteString(outcome(m.Outcome))
	if m.FailedStage != "" && m.Outcome == OutcomeFailed {
		b.WriteString(" at ")
		b.WriteString(m.FailedStage)
	}
	if c := shortCommit(m.Commit); c != "" {
		fmt.Fprintf(&b, " (%s)", c)
	}
	return headerValue(b.String())
}

// Body is the plain-text message: what happened, where to look, and the end
// of the failed stage's log. Identity fields are kept to one line each and
// the error's further lines are indented, so webhook data cannot forge a
// line such as "Link: ..." that looks like kiln wrote it.
func Body(m Message) string {
	var b strings.Builder
	headline := fmt.Sprintf("Pipeline %s %s", orDash(m.Pipeline), outcome(m.Outcome))
	if m.FailedStage != "" && m.Outcome == OutcomeFailed {
		headline += " at stage " + m.FailedStage
	}
	b.WriteString(headerValue(headline) + ".\n\n")
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-9s %s\n", k+":", headerValue(v))
		}
	}
	field("Outcome", outcome(m.Outcome))
	field("Pipeline", m.Pipeline)
	field("Repo", m.Repo)
	field("Ref", m.Ref)
	field("Commit", m.Commit)
	field("Run", m.RunID)
	field("Link", m.URL)
	field("Stage", m.FailedStage)
	if e := strings.TrimSpace(strings.ReplaceAll(m.Error, "\r", "")); e != "" {
		fmt.Fprintf(&b, "%-9s %s\n", "Error:", strings.ReplaceAll(e, "\n", "\n          "))
	}
	b.WriteString(testsPart(m.Tests))
	if tail := logTail(m.LogTail); tail != "" {
		b.WriteString("\nLast lines of the log:\n\n")
		b.WriteString(tail)
		if !strings.HasSuffix(tail, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// testsPart has a line of counts per test report and names the first
// failed tests. Each line is indented and free of control characters, so a
// test's name or message cannot forge a line of kiln's own.
func testsPart(reports []TestReport) string {
	if len(reports) == 0 {
		return ""
	}
	var b, failures strings.Builder
	line := func(b *strings.Builder, s string) {
		b.WriteString("  " + truncate(headerValue(ansi.ReplaceAllString(s, "")), maxTestLine) + "\n")
	}
	b.WriteString("\nTests:\n")
	failed, shown := 0, 0
	for i, r := range reports {
		s := r.Summary
		if i < maxTestReports {
			counts := fmt.Sprintf("%s: %d passed, %d failed, %d errors, %d skipped", r.Name, s.Passed, s.Failed, s.Errors, s.Skipped)
			if r.Error != "" {
				counts += " (" + r.Error + ")"
			}
			line(&b, counts)
		}
		failed += s.Failed + s.Errors
		for _, c := range s.Failures[:min(len(s.Failures), maxFailedTests-shown)] {
			line(&failures, strings.TrimSuffix(c.Title()+": "+c.Message, ": "))
			shown++
		}
	}
	if len(reports) > maxTestReports {
		line(&b, fmt.Sprintf("... and %d more reports", len(reports)-maxTestReports))
	}
	if failed > 0 {
		b.WriteString("\nFailed tests:\n" + failures.String())
		if failed > shown {
			line(&b, fmt.Sprintf("... and %d more", failed-shown))
		}
	}
	return b.String()
}

// headerValue makes s safe for one header line: every control character
// (CR and LF above all, which would start a new header) becomes a space,
// and runs of spaces collapse.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts s to at most n runes, never inside a rune, marking the cut
// with an ASCII "..." (n must be more than 3).
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-3]) + "..."
}

func outcome(o string) string {
	if o == "" {
		return "finished"
	}
	return o
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortRef drops the refs/heads/ or refs/tags/ prefix people never type.
func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if strings.HasPrefix(ref, p) {
			return ref[len(p):]
		}
	}
	return ref
}

func shortCommit(c string) string {
	if len(c) > shortCommitLen {
		return c[:shortCommitLen]
	}
	return c
}

// ansi matches terminal escape sequences (colours, cursor moves) that build
// tools print and that turn into noise in a mail.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// logTail keeps the last maxLogTail bytes of a log, from a line start, with
// escape sequences removed.
func logTail(s string) string {
	s = ansi.ReplaceAllString(s, "")
	if len(s) <= maxLogTail {
		return s
	}
	s = s[len(s)-maxLogTail:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "[…]\n" + strings.ToValidUTF8(s, "")
}
