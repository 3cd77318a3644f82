package notify_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kiln-ci/kiln/internal/junit"
	"github.com/kiln-ci/kiln/internal/notify"
)

// TestBodyTests: each report gets a line of counts, failed tests are named
// with their messages, and a test's text cannot start a line of its own.
func TestBodyTests(t *testing.T) {
	m := failed()
	m.Tests = []notify.TestReport{
		{Name: "unit", Summary: junit.Summary{Total: 9, Passed: 5, Failed: 2, Errors: 1, Skipped: 1, Failures: []junit.Case{
			{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "divides", Message: "expected: <2> but was: <3>"},
			{Class: "tests.test_api", Name: "test_post\r\nLink: https://evil.example.com", Message: "assert\x1b[31m 201 == 200"},
		}}},
		{Name: "e2e", Error: `no files matched "e2e/*.xml"`},
	}
	body := notify.Body(m)
	assert.Contains(t, body, "Error:    go test exited 1\n\nTests:\n"+
		"  unit: 5 passed, 2 failed, 1 errors, 1 skipped\n"+
		"  e2e: 0 passed, 0 failed, 0 errors, 0 skipped (no files matched \"e2e/*.xml\")\n"+
		"\nFailed tests:\n"+
		"  com.acme.MathTest.divides: expected: <2> but was: <3>\n"+
		"  tests.test_api.test_post Link: https://evil.example.com: assert 201 == 200\n"+
		"  ... and 1 more\n"+
		"\nLast lines of the log:\n", body)
	assert.NotContains(t, notify.Body(failed()), "Tests:", "no reports, no section")
}

// TestBodyTestsBounded: a thousand reports and failures leave a short part.
func TestBodyTestsBounded(t *testing.T) {
	m := notify.Message{Pipeline: "app", Outcome: notify.OutcomeFailed}
	for i := range 1000 {
		r := notify.TestReport{Name: fmt.Sprint("r", i), Summary: junit.Summary{Total: 1, Failed: 1,
			Failures: []junit.Case{{Name: strings.Repeat("n", 10000), Message: strings.Repeat("m", 10000)}}}}
		m.Tests = append(m.Tests, r)
	}
	body := notify.Body(m)
	assert.Less(t, len(body), 12<<10)
	assert.Contains(t, body, "  r19: 0 passed, 1 failed, 0 errors, 0 skipped\n  ... and 980 more reports\n")
	assert.Equal(t, 10, strings.Count(body, "  nnnn"))
	assert.True(t, strings.HasSuffix(body, "...\n  ... and 990 more\n"), body[len(body)-100:])
}
