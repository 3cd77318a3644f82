package buildspec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/kiln-ci/kiln/internal/junit"
)

// Bounds on collecting reports, so a glob such as "**/*" over a large tree
// or one huge file cannot stall the worker or bloat the activity result.
const (
	// maxReportFileSize bounds one report file; surefire's largest are a few MiB.
	maxReportFileSize = 64 << 20
	// maxReportFiles bounds the files read for one report.
	maxReportFiles = 1000
	// maxReportProblems bounds the problems named in ReportResult.Error.
	maxReportProblems = 5
)

// ReportResult is one report group's test results, collected after a build.
type ReportResult struct {
	// Name is the report group's name or ARN, as in the buildspec.
	Name string
	// Format is the files' format, FormatJUnitXML.
	Format string
	// Files are the report files counted, relative to the source directory, sorted.
	Files []string
	// Summary adds up the counted files.
	Summary junit.Summary
	// Error says why some or all of the report could not be collected: no
	// file matched, or which files could not be read and why. The files that
	// could be read are counted all the same.
	Error string
}

// CollectReports reads each report's files under fsys, which is rooted at
// the build's source directory. It never fails as a whole: a report's
// problems are in its ReportResult.Error, and the other reports are still
// collected. fsys should refuse symlinks leading out of the source tree, as
// (*os.Root).FS does; CollectReports itself does not follow symlinks it
// finds by a glob, nor read a symlinked report file.
func CollectReports(fsys fs.FS, reports []Report) []ReportResult {
	var out []ReportResult
	for _, r := range reports {
		out = append(out, collectReport(fsys, r))
	}
	return out
}

func collectReport(fsys fs.FS, r Report) ReportResult {
	res := ReportResult{Name: r.Name, Format: r.FileFormat}
	if res.Format == "" {
		res.Format = FormatJUnitXML
	}
	if res.Format != FormatJUnitXML {
		res.Error = fmt.Sprintf("file-format %s: kiln reads only %s reports", res.Format, FormatJUnitXML)
		return res
	}
	files, problems := matchReportFiles(fsys, r)
	for _, name := range files {
		s, err := readReport(fsys, name, maxReportFileSize)
		if err != nil {
			problems = append(problems, name+": "+err.Error())
			continue
		}
		res.Files = append(res.Files, name)
		res.Summary.Merge(s)
	}
	res.Error = joinProblems(problems)
	return res
}

// matchReportFiles returns the regular files r.Files match, relative to the
// source directory, once each and sorted, with what went wrong finding them.
func matchReportFiles(fsys fs.FS, r Report) ([]string, []string) {
	base := path.Clean(cleanPattern(r.BaseDirectory))
	if !fs.ValidPath(base) {
		return nil, []string{fmt.Sprintf("base-directory %q is outside the source directory", r.BaseDirectory)}
	}
	sub, err := fs.Sub(fsys, base)
	if err != nil {
		return nil, []string{fmt.Sprintf("base-directory %q: %v", r.BaseDirectory, err)}
	}
	var problems []string
	seen := map[string]bool{}
	var files []string
	for _, pat := range r.Files {
		// NoFollow: a symlink loop must not make "**" walk forever.
		matches, err := doublestar.Glob(sub, cleanPattern(pat), doublestar.WithFilesOnly(), doublestar.WithNoFollow())
		if err != nil {
			problems = append(problems, fmt.Sprintf("files %q: %v", pat, err))
			continue
		}
		for _, m := range matches {
			name := path.Join(base, m)
			// WithFilesOnly still returns symlinks, to directories too.
			if fi, err := fs.Lstat(fsys, name); err != nil || !fi.Mode().IsRegular() || seen[name] {
				continue
			}
			seen[name] = true
			files = append(files, name)
		}
	}
	sort.Strings(files)
	if len(files) == 0 && len(problems) == 0 {
		problems = append(problems, noMatch(fsys, r, base))
	}
	if len(files) > maxReportFiles {
		problems = append(problems, fmt.Sprintf("%d files matched; kiln reads the first %d", len(files), maxReportFiles))
		files = files[:maxReportFiles]
	}
	return files, problems
}

// noMatch says no file matched, and why when the reason is plain: the
// base directory is missing, often because the tests never ran.
func noMatch(fsys fs.FS, r Report, base string) string {
	quoted := make([]string, len(r.Files))
	for i, pat := range r.Files {
		quoted[i] = fmt.Sprintf("%q", pat)
	}
	msg := "no files matched " + strings.Join(quoted, ", ")
	if base == "." {
		return msg
	}
	msg += fmt.Sprintf(" in base-directory %q", r.BaseDirectory)
	if _, err := fs.Stat(fsys, base); errors.Is(err, fs.ErrNotExist) {
		msg += ", which does not exist"
	}
	return msg
}

// errTooLarge is returned by sizeLimit past its limit.
var errTooLarge = fmt.Errorf("larger than %d MiB, the most kiln reads of one report file", maxReportFileSize>>20)

// readReport parses one report file of at most limit bytes. The size is
// checked before and while reading: fsys may be a container's, whose sizes
// kiln does not vouch for.
func readReport(fsys fs.FS, name string, limit int64) (junit.Summary, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return junit.Summary{}, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return junit.Summary{}, errTooLarge
	}
	return junit.Parse(&sizeLimit{r: f, left: limit})
}

// sizeLimit reads at most left bytes from r and then fails with
// errTooLarge, unless r is at its end.
type sizeLimit struct {
	r    io.Reader
	left int64
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var probe [1]byte
		if n, err := l.r.Read(probe[:]); n == 0 {
			return 0, err // io.EOF: the file was exactly the limit
		}
		return 0, errTooLarge
	}
	p = p[:min(int64(len(p)), l.left)]
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// joinProblems is ReportResult.Error: the first maxReportProblems problems,
// then how many more there were.
func joinProblems(problems []string) string {
	if len(problems) <= maxReportProblems {
		return strings.Join(problems, "; ")
	}
	return fmt.Sprintf("%s; and %d more problems", strings.Join(problems[:maxReportProblems], "; "), len(problems)-maxReportProblems)
}

// reports collects the spec's test reports from the sandbox and logs a line
// for each.
func (r *runner) reports() {
	if len(r.spec.Reports) == 0 {
		return
	}
	src, err := r.o.Sandbox.Source()
	if err != nil {
		r.logf("reports: cannot read the source directory: %v", err)
		return
	}
	r.res.Reports = CollectReports(src, r.spec.Reports)
	r.scrubReports()
	for _, rep := range r.res.Reports {
		s := rep.Summary
		r.logf("report %s: %d passed, %d failed, %d errors, %d skipped in %d files", rep.Name, s.Passed, s.Failed, s.Errors, s.Skipped, len(rep.Files))
		if rep.Error != "" {
			r.logf("report %s: %s", rep.Name, rep.Error)
		}
	}
}

// scrubReports removes secrets from what test tools wrote into reports:
// the reports go into the run's history, comments and notifications.
func (r *runner) scrubReports() {
	if r.scrub == nil {
		return
	}
	for i := range r.res.Reports {
		rep := &r.res.Reports[i]
		rep.Error = r.scrub.String(rep.Error)
		for j := range rep.Summary.Failures {
			c := &rep.Summary.Failures[j]
			c.Suite, c.Class, c.Name, c.Message = r.scrub.String(c.Suite), r.scrub.String(c.Class), r.scrub.String(c.Name), r.scrub.String(c.Message)
		}
	}
}
