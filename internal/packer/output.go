package packer

import (
	"bufio"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/scrub"
)

// maxLineBytes bounds one line of packer output kept in memory; the rest of
// a longer line is dropped.
const maxLineBytes = 64 * 1024

// output turns packer's stdout and stderr into scrubbed log lines, progress,
// error messages and artifacts. Its methods are safe for concurrent use: the
// two streams are read by two goroutines.
type output struct {
	scrub    func(string) string
	log      io.Writer
	progress func(Progress)

	mu       sync.Mutex
	tail     *buildspec.TailWriter
	step     string
	errs     []string // from <target>,error,<msg>
	uiErrs   []string // from ui,error: used when no build reported an error
	amis     map[Artifact]bool
	lastLine string
}

func newOutput(o Options) *output {
	return &output{
		scrub:    scrub.New(append(slices.Collect(maps.Values(o.SecretVars)), o.Secrets...), escape).String,
		log:      o.Log,
		progress: o.Progress,
		tail:     buildspec.NewTailWriter(buildspec.DefaultTailLines),
		amis:     map[Artifact]bool{},
	}
}

// readLines feeds each line of r to handle until r ends or fails.
func (out *output) readLines(r io.Reader, handle func(string)) {
	br := bufio.NewReaderSize(r, 4096)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line) < maxLineBytes {
			line = append(line, chunk[:min(len(chunk), maxLineBytes-len(line))]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			handle(strings.TrimRight(string(line), "\r\n"))
		}
		line = line[:0]
		if err != nil {
			return
		}
	}
}

// stdoutLine handles one machine-readable line. The raw line is scrubbed
// before parsing, so a secret split across fields by an escaped comma is
// still caught, and each field is scrubbed again after unescaping.
func (out *output) stdoutLine(raw string) {
	r, ok := parseRecord(out.scrub(raw))
	if !ok {
		out.human(out.scrub(raw), false)
		return
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if kind, text, ok := r.uiText(); ok {
		text = out.scrub(text)
		if kind == "error" {
			out.uiErrs = append(out.uiErrs, strings.TrimSpace(text))
		}
		out.humanLocked(text, kind == "say")
		return
	}
	if msg, ok := r.buildError(); ok {
		out.errs = append(out.errs, out.scrub(r.Target+": "+msg))
	}
	for _, a := range r.artifactIDs() {
		out.amis[a] = true
	}
}

// stderrLine handles a line packer wrote to stderr (crashes, plugin noise).
func (out *output) stderrLine(raw string) { out.human(out.scrub(raw), false) }

func (out *output) human(text string, say bool) {
	out.mu.Lock()
	defer out.mu.Unlock()
	out.humanLocked(text, say)
}

// humanLocked writes an already scrubbed UI message to the log and tail and
// reports progress. Packer's messages may span lines (escaped \n).
func (out *output) humanLocked(text string, say bool) {
	text = strings.TrimRight(strings.TrimLeft(text, "\n"), "\n")
	if text == "" {
		return
	}
	if out.log != nil {
		_, _ = io.WriteString(out.log, text+"\n")
	}
	_, _ = io.WriteString(out.tail, text+"\n")
	lines := strings.Split(text, "\n")
	out.lastLine = strings.TrimSpace(lines[len(lines)-1])
	if say {
		if s, ok := strings.CutPrefix(strings.TrimSpace(lines[0]), "==> "); ok {
			out.step = s
		}
	}
	if out.progress != nil {
		out.progress(Progress{LastLine: out.lastLine, Step: out.step})
	}
}

// artifacts returns the distinct AMIs seen, sorted by region then AMI.
func (out *output) artifacts() []Artifact {
	out.mu.Lock()
	defer out.mu.Unlock()
	return sortedArtifacts(out.amis)
}

func sortedArtifacts(set map[Artifact]bool) []Artifact {
	list := make([]Artifact, 0, len(set))
	for a := range set {
		list = append(list, a)
	}
	slices.SortFunc(list, func(a, b Artifact) int {
		return strings.Compare(a.Region+"\x00"+a.AMI, b.Region+"\x00"+b.AMI)
	})
	return list
}

// failure returns the build's error messages and the log's last lines.
func (out *output) failure() (errs, tail []string) {
	out.mu.Lock()
	defer out.mu.Unlock()
	errs = slices.Clone(out.errs)
	if len(errs) == 0 {
		errs = slices.Clone(out.uiErrs)
	}
	return errs, out.tail.Lines()
}
