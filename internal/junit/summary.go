package junit

import (
	"strings"
	"time"
	"unicode/utf8"
)

// MaxFailures bounds Summary.Failures, so that a run where a thousand tests
// fail still fits in an activity result and a pull-request comment. The
// counts stay exact; only the list of failed cases is cut.
const MaxFailures = 100

// maxMessage bounds Case.Message, in runes: enough for an assertion's
// expected and actual values, not a stack trace.
const maxMessage = 300

// Summary is what a test report says, or several reports added up with Merge.
type Summary struct {
	// Total is the number of test cases; it is Passed+Failed+Errors+Skipped.
	Total, Passed, Failed, Errors, Skipped int
	// Time is the sum of the test cases' own times. Suites' times are not
	// used: some tools leave them out, others count setup in them.
	Time time.Duration
	// Failures are the failed and errored cases in file order, at most
	// MaxFailures of them.
	Failures []Case
}

// Case is one failed or errored test case.
type Case struct {
	// Suite is the name of the innermost <testsuite> holding the case.
	Suite string
	// Class and Name are the case's classname and name attributes.
	Class, Name string
	// Message says why the case failed, on one line of at most a few hundred
	// runes: the message attribute, or the first line of the failure's text
	// when the attribute is missing or only says "Failed" (go-junit-report).
	Message string
}

// Title is how a case is shown to people, "suite/class.name", leaving out
// what repeats: Maven names the suite after the class, and jest-junit sets
// the class to the test's name.
func (c Case) Title() string {
	title := c.Name
	if c.Class != "" && c.Class != c.Name {
		title = c.Class + "." + c.Name
	}
	if c.Suite != "" && c.Suite != c.Class {
		title = c.Suite + "/" + title
	}
	return title
}

// Merge adds o's counts and time to s and keeps o's failed cases while s
// holds fewer than MaxFailures.
func (s *Summary) Merge(o Summary) {
	s.Total += o.Total
	s.Passed += o.Passed
	s.Failed += o.Failed
	s.Errors += o.Errors
	s.Skipped += o.Skipped
	s.Time += o.Time
	for _, c := range o.Failures {
		s.keep(c)
	}
}

// keep appends a failed case unless MaxFailures are already kept.
func (s *Summary) keep(c Case) {
	if len(s.Failures) < MaxFailures {
		s.Failures = append(s.Failures, c)
	}
}

// oneLine collapses all whitespace, line breaks included, into single
// spaces and cuts the result to maxMessage runes, ending in "…" when cut.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxMessage {
		return s
	}
	return string([]rune(s)[:maxMessage-1]) + "…"
}

// firstLine is the first non-blank line of s.
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			return line
		}
	}
	return ""
}
