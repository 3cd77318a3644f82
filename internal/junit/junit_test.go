package junit

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseFile(t *testing.T, name string) Summary {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	s, err := Parse(f)
	require.NoError(t, err)
	return s
}

func parseString(s string) (Summary, error) { return Parse(strings.NewReader(s)) }

// TestParseToolOutputs reads a report from each tool whose shape kiln must
// understand, written the way each tool writes it.
func TestParseToolOutputs(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Summary
	}{
		{"surefire.xml", Summary{Total: 5, Passed: 2, Failed: 1, Errors: 1, Skipped: 1, Time: 37 * time.Millisecond,
			Failures: []Case{
				{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "divides", Message: "expected: <2> but was: <3>"},
				{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "parses", Message: `For input string: "x"`},
			}}},
		{"pytest.xml", Summary{Total: 5, Passed: 1, Failed: 1, Errors: 1, Skipped: 2, Time: 4 * time.Millisecond,
			Failures: []Case{
				{Suite: "pytest", Class: "tests.test_api", Name: "test_post", Message: "assert 201 == 200 + where 201 = <Response [201]>.status_code"},
				{Suite: "pytest", Class: "tests.test_api", Name: "test_db", Message: `failed on setup with "ConnectionRefusedError: [Errno 111] Connection refused"`},
			}}},
		{"go-junit-report.xml", Summary{Total: 4, Passed: 1, Failed: 2, Skipped: 1, Time: 3 * time.Millisecond,
			Failures: []Case{
				{Suite: "github.com/acme/app/store", Class: "github.com/acme/app/store", Name: "TestGet/missing", Message: `store_test.go:42: got "x", want ""`},
				{Suite: "github.com/acme/app/store", Class: "github.com/acme/app/store", Name: "TestGet", Message: "Failed"},
			}}},
		{"jest-junit.xml", Summary{Total: 3, Passed: 1, Failed: 1, Skipped: 1, Time: 15 * time.Millisecond,
			Failures: []Case{
				{Suite: "cart", Class: "cart applies a discount", Name: "cart applies a discount", Message: "Error: expect(received).toBe(expected) // Object.is equality"},
			}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := parseFile(t, tc.file)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, got.Total, got.Passed+got.Failed+got.Errors+got.Skipped)
		})
	}
}

// TestParseCountsCasesNotAttributes: a suite that claims 100 passing tests
// but holds one passing and one failing case counts two, one failed.
func TestParseCountsCasesNotAttributes(t *testing.T) {
	s, err := parseString(`<testsuite name="s" tests="100" failures="0" errors="0" skipped="7">
		<testcase name="a"/><testcase name="b"><failure message="no"/></testcase></testsuite>`)
	require.NoError(t, err)
	assert.Equal(t, 2, s.Total)
	assert.Equal(t, 1, s.Passed)
	assert.Equal(t, 1, s.Failed)
	assert.Equal(t, 0, s.Skipped)
}

// TestParseNestedSuites: a case belongs to its innermost suite, and one
// outcome counts per case, an error above a failure above a skip.
func TestParseNestedSuites(t *testing.T) {
	s, err := parseString(`<testsuites><testsuite name="outer"><testsuite name="inner">
		<testcase name="both"><failure message="f"/><error message="e"/></testcase>
		<testcase name="skip-then-fail"><skipped/><failure message="f2"/></testcase>
	</testsuite><testcase name="top"><skipped/></testcase></testsuite></testsuites>`)
	require.NoError(t, err)
	assert.Equal(t, Summary{Total: 3, Failed: 1, Errors: 1, Skipped: 1, Failures: []Case{
		{Suite: "inner", Name: "both", Message: "e"},
		{Suite: "inner", Name: "skip-then-fail", Message: "f2"},
	}}, s)
}

// TestParseKeepsAtMostMaxFailures: the count stays exact while the list is
// cut, and a long message is cut to one short line.
func TestParseKeepsAtMostMaxFailures(t *testing.T) {
	var b strings.Builder
	b.WriteString("<testsuite>")
	for i := range MaxFailures + 50 {
		fmt.Fprintf(&b, `<testcase name="t%d"><failure>%s</failure></testcase>`, i, strings.Repeat("é", 5000))
	}
	b.WriteString("</testsuite>")
	s, err := parseString(b.String())
	require.NoError(t, err)
	assert.Equal(t, MaxFailures+50, s.Failed)
	require.Len(t, s.Failures, MaxFailures)
	assert.Equal(t, "t99", s.Failures[MaxFailures-1].Name)
	assert.Equal(t, maxMessage, len([]rune(s.Failures[0].Message)))
	assert.True(t, strings.HasSuffix(s.Failures[0].Message, "é…"))
}

// TestParseRefusesOtherFiles: what is not JUnit XML says so, and malformed
// XML names its line.
func TestParseRefusesOtherFiles(t *testing.T) {
	for src, want := range map[string]string{
		"":                                      "not a JUnit XML report: the file holds no XML element",
		"<?xml version=\"1.0\"?>\n<!-- x -->\n": "not a JUnit XML report: the file holds no XML element",
		"Tests run: 3, Failures: 0\n":           "not a JUnit XML report: the file does not start with an XML element",
		`{"numTotalTests": 3}`:                  "not a JUnit XML report: the file does not start with an XML element",
		"<project><modelVersion>4.0.0</modelVersion></project>": "not a JUnit XML report: the root element is <project>, not <testsuites> or <testsuite>",
	} {
		_, err := parseString(src)
		require.Error(t, err, src)
		assert.True(t, errors.Is(err, ErrNotJUnit), "%q: %v", src, err)
		assert.EqualError(t, err, want)
	}
	for src, want := range map[string]string{
		"<testsuite>\n<testcase name=\"a\">\n":                "XML syntax error on line 3: unexpected EOF",
		"<testsuite>\n<testcase name=\"a\"></testsuite>":      "XML syntax error on line 2: element <testcase> closed by </testsuite>",
		`<?xml version="1.0" encoding="EBCDIC"?><testsuite/>`: `xml: encoding "EBCDIC" declared but Decoder.CharsetReader is nil`,
	} {
		_, err := parseString(src)
		require.Error(t, err, src)
		assert.False(t, errors.Is(err, ErrNotJUnit), src)
		if strings.Contains(src, "EBCDIC") {
			assert.ErrorContains(t, err, `encoding "EBCDIC" is not supported; write reports in UTF-8`)
			continue
		}
		assert.EqualError(t, err, want)
	}
}

// TestParseLatin1: older Java tools declare ISO-8859-1.
func TestParseLatin1(t *testing.T) {
	s, err := parseString("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><testsuite><testcase name=\"caf\xe9\"><failure message=\"\xfcber\"/></testcase></testsuite>")
	require.NoError(t, err)
	require.Len(t, s.Failures, 1)
	assert.Equal(t, "café", s.Failures[0].Name)
	assert.Equal(t, "über", s.Failures[0].Message)
}

// TestParseStopsAtRootEnd: what follows the root element is not read.
func TestParseStopsAtRootEnd(t *testing.T) {
	s, err := parseString(`<testsuite><testcase name="a"/></testsuite><testsuite><testcase name="b"/>`)
	require.NoError(t, err)
	assert.Equal(t, 1, s.Total)
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1.5": 1500 * time.Millisecond, " 2 ": 2 * time.Second, "1,234.5": 1234500 * time.Millisecond,
		"0,25": 250 * time.Millisecond, "": 0, "NaN": 0, "-3": 0, "1e300": 0, "soon": 0,
	} {
		assert.Equal(t, want, seconds(in), in)
	}
}

func TestMergeKeepsAtMostMaxFailures(t *testing.T) {
	one := Summary{Total: 60, Failed: 60, Time: time.Second}
	for i := range 60 {
		one.Failures = append(one.Failures, Case{Name: fmt.Sprint(i)})
	}
	var s Summary
	s.Merge(one)
	s.Merge(one)
	s.Merge(Summary{Total: 2, Passed: 1, Skipped: 1, Errors: 0})
	assert.Equal(t, 122, s.Total)
	assert.Equal(t, 120, s.Failed)
	assert.Equal(t, 1, s.Passed)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, 2*time.Second, s.Time)
	require.Len(t, s.Failures, MaxFailures)
	assert.Equal(t, "39", s.Failures[MaxFailures-1].Name, "the second summary's first cases fill the rest")
}

func TestCaseTitle(t *testing.T) {
	for c, want := range map[Case]string{
		{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "divides"}: "com.acme.MathTest.divides",
		{Suite: "pytest", Class: "tests.test_api", Name: "test_post"}:             "pytest/tests.test_api.test_post",
		{Suite: "cart", Class: "cart checks out", Name: "cart checks out"}:        "cart/cart checks out",
		{Name: "alone"}: "alone",
	} {
		assert.Equal(t, want, c.Title())
	}
}
