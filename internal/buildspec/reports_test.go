package buildspec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kiln-ci/kiln/internal/junit"
)

// Report files as test tools write them, cut down.
const (
	passingXML = `<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.acme.AppTest" tests="2"><testcase classname="com.acme.AppTest" name="starts" time="0.5"/><testcase classname="com.acme.AppTest" name="stops" time="0.25"/></testsuite>`
	failingXML = `<testsuites><testsuite name="com.acme.MathTest"><testcase classname="com.acme.MathTest" name="divides" time="1">
<failure message="expected: &lt;2&gt; but was: &lt;3&gt;">trace</failure></testcase><testcase classname="com.acme.MathTest" name="rounds"><skipped/></testcase></testsuite></testsuites>`
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// TestCollectReports: each report sums its own files, relative to its base
// directory; a report whose files are missing says so without stopping the
// others.
func TestCollectReports(t *testing.T) {
	fsys := fstest.MapFS{
		"target/surefire-reports/TEST-com.acme.AppTest.xml":  file(passingXML),
		"target/surefire-reports/TEST-com.acme.MathTest.xml": file(failingXML),
		"target/surefire-reports/com.acme.AppTest.txt":       file("Tests run: 2, Failures: 0\n"),
		"web/junit.xml": file(passingXML),
	}
	got := CollectReports(fsys, []Report{
		{Name: "unit", Files: []string{"**/TEST-*.xml", "./TEST-com.acme.AppTest.xml"}, BaseDirectory: "target/surefire-reports", FileFormat: FormatJUnitXML},
		{Name: "e2e", Files: []string{"e2e/*.xml", "e2e.xml"}},
		{Name: "web", Files: []string{"web/junit.xml"}, FileFormat: FormatJUnitXML},
	})
	want := []ReportResult{
		{Name: "unit", Format: FormatJUnitXML,
			Files: []string{"target/surefire-reports/TEST-com.acme.AppTest.xml", "target/surefire-reports/TEST-com.acme.MathTest.xml"},
			Summary: junit.Summary{Total: 4, Passed: 2, Failed: 1, Skipped: 1, Time: 1750e6, Failures: []junit.Case{
				{Suite: "com.acme.MathTest", Class: "com.acme.MathTest", Name: "divides", Message: "expected: <2> but was: <3>"},
			}}},
		{Name: "e2e", Format: FormatJUnitXML, Error: `no files matched "e2e/*.xml", "e2e.xml"`},
		{Name: "web", Format: FormatJUnitXML, Files: []string{"web/junit.xml"}, Summary: junit.Summary{Total: 2, Passed: 2, Time: 750e6}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

// TestCollectReportsBadFile: a file that is not a report is named with the
// reason, and the good files are still counted.
func TestCollectReportsBadFile(t *testing.T) {
	fsys := fstest.MapFS{
		"out/a.xml":        file(passingXML),
		"out/b.xml":        file("<testsuite><testcase name=\"x\">"),
		"out/c.txt":        file("Tests run: 2\n"),
		"out/d/pom.xml":    file("<project/>"),
		"out/e-report.xml": file(failingXML),
	}
	got := CollectReports(fsys, []Report{{Name: "r", Files: []string{"**/*"}, BaseDirectory: "out"}})[0]
	wantFiles := []string{"out/a.xml", "out/e-report.xml"}
	if !reflect.DeepEqual(got.Files, wantFiles) || got.Summary.Total != 4 || got.Summary.Failed != 1 {
		t.Errorf("Files = %q, Summary = %+v", got.Files, got.Summary)
	}
	wantContains(t, got.Error, "out/b.xml: XML syntax error on line 1: unexpected EOF; ")
	wantContains(t, got.Error, "out/c.txt: not a JUnit XML report: the file does not start with an XML element; ")
	wantContains(t, got.Error, "out/d/pom.xml: not a JUnit XML report: the root element is <project>")
}

func TestCollectReportsMissingBaseDirectory(t *testing.T) {
	got := CollectReports(fstest.MapFS{"x.xml": file(passingXML)}, []Report{{Name: "r", Files: []string{"*.xml"}, BaseDirectory: "build/test-results"}})
	if want := `no files matched "*.xml" in base-directory "build/test-results", which does not exist`; got[0].Error != want {
		t.Errorf("Error = %q, want %q", got[0].Error, want)
	}
}

// TestCollectReportsOtherFormat: a Report built by hand with a format kiln
// cannot read is refused rather than misread.
func TestCollectReportsOtherFormat(t *testing.T) {
	got := CollectReports(fstest.MapFS{"c.json": file("{}")}, []Report{{Name: "r", Files: []string{"c.json"}, FileFormat: "CUCUMBERJSON"}})
	if got[0].Error != "file-format CUCUMBERJSON: kiln reads only JUNITXML reports" || got[0].Files != nil {
		t.Errorf("got %+v", got[0])
	}
}

// TestCollectReportsBoundsProblems: a glob matching many bad files names a
// few of them, not all.
func TestCollectReportsBoundsProblems(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, c := range "abcdefgh" {
		fsys["r/"+string(c)+".xml"] = file("junk")
	}
	got := CollectReports(fsys, []Report{{Name: "r", Files: []string{"r/*.xml"}}})[0]
	if strings.Count(got.Error, "not a JUnit XML report") != maxReportProblems || !strings.HasSuffix(got.Error, "; and 3 more problems") {
		t.Errorf("Error = %q", got.Error)
	}
}

// TestCollectReportsSkipsSymlinks: a symlinked report could point anywhere
// on the worker, so it is not read, on an in-memory tree and a real one.
func TestCollectReportsSkipsSymlinks(t *testing.T) {
	mem := fstest.MapFS{
		"out/a.xml":    file(passingXML),
		"out/link.xml": &fstest.MapFile{Data: []byte("a.xml"), Mode: fs.ModeSymlink},
	}
	if got := CollectReports(mem, []Report{{Name: "r", Files: []string{"out/*.xml"}}})[0]; !reflect.DeepEqual(got.Files, []string{"out/a.xml"}) {
		t.Errorf("in memory: Files = %q, Error = %q", got.Files, got.Error)
	}

	outside := filepath.Join(t.TempDir(), "secret.xml")
	writeFile(t, outside, failingXML)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "out", "a.xml"), passingXML)
	if err := os.Symlink(outside, filepath.Join(src, "out", "b.xml")); err != nil {
		t.Fatal(err)
	}
	got := CollectReports(os.DirFS(src), []Report{{Name: "r", Files: []string{"out/*.xml"}}})[0]
	if !reflect.DeepEqual(got.Files, []string{"out/a.xml"}) || got.Summary.Failed != 0 {
		t.Errorf("on disk: Files = %q, Summary = %+v", got.Files, got.Summary)
	}
}

// TestReadReportSizeLimit: a file over the limit is refused before it is
// read, and one that grows past it while read is cut off.
func TestReadReportSizeLimit(t *testing.T) {
	fsys := fstest.MapFS{"big.xml": file("<testsuite>" + strings.Repeat(" ", 100) + "</testsuite>")}
	if _, err := readReport(fsys, "big.xml", 50); !errors.Is(err, errTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := readReport(fsys, "big.xml", int64(len(fsys["big.xml"].Data))); err != nil {
		t.Errorf("exactly the limit: %v", err)
	}
	_, err := junit.Parse(&sizeLimit{r: strings.NewReader(string(fsys["big.xml"].Data)), left: 50})
	if !errors.Is(err, errTooLarge) {
		t.Errorf("reading past the limit: %v", err)
	}
	wantContains(t, errTooLarge.Error(), "larger than 64 MiB")
}
