package buildspec

import (
	"bytes"
	"strings"
	"sync"
)

// DefaultTailLines is how many log lines a CommandError carries: enough to
// show a compiler error or failing test, short enough for a commit status.
const DefaultTailLines = 20

// maxTailLineBytes bounds one remembered line, so a command printing megabytes
// without a newline cannot grow the tail without limit.
const maxTailLineBytes = 4096

// TailWriter is an io.Writer remembering only the last lines written to it. It
// lets a failure report quote the end of a log that is otherwise streamed
// away. It is safe for concurrent use.
type TailWriter struct {
	// Skip, when set, leaves out lines that start with it.
	Skip    string
	mu      sync.Mutex
	ring    []string
	next    int // index in ring of the oldest line once the ring is full
	partial []byte
}

// NewTailWriter returns a TailWriter keeping the last n lines (DefaultTailLines if n < 1).
func NewTailWriter(n int) *TailWriter {
	if n < 1 {
		n = DefaultTailLines
	}
	return &TailWriter{ring: make([]string, 0, n)}
}

// Write records p; it never fails, so it can sit in an io.MultiWriter
// without stopping the real log.
func (t *TailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			t.appendPartial(rest)
			return len(p), nil
		}
		t.appendPartial(rest[:i])
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		rest = rest[i+1:]
	}
}

func (t *TailWriter) appendPartial(b []byte) {
	if room := maxTailLineBytes - len(t.partial); room < len(b) {
		b = b[:max(room, 0)]
	}
	t.partial = append(t.partial, b...)
}

// push adds a complete line. Carriage returns redraw a terminal line
// (progress bars), so only the text after the last one is what a person saw.
func (t *TailWriter) push(line string) {
	line = strings.TrimSuffix(line, "\r")
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	if t.Skip != "" && strings.HasPrefix(line, t.Skip) {
		return
	}
	if len(t.ring) < cap(t.ring) {
		t.ring = append(t.ring, line)
		return
	}
	t.ring[t.next] = line
	t.next = (t.next + 1) % len(t.ring)
}

// Lines returns the remembered lines, oldest first, including a final line not
// yet ended by a newline.
func (t *TailWriter) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.ring)+1)
	out = append(out, t.ring[t.next:]...)
	out = append(out, t.ring[:t.next]...)
	if len(t.partial) > 0 {
		out = append(out, strings.TrimSuffix(string(t.partial), "\r"))
		if len(out) > cap(t.ring) {
			out = out[1:]
		}
	}
	return out
}
