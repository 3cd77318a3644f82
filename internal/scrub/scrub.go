// Package scrub removes secrets from text kiln logs or records: whole, and
// line by line for a multi-line secret (a PEM key) printed a line at a time.
package scrub

import (
	"cmp"
	"io"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces a secret.
const Redacted = "<sensitive>"

// MinSecretLine is the shortest line of a multi-line secret scrubbed on its
// own. Shorter lines ("-----", "}") are too common to replace.
const MinSecretLine = 8

// Scrubber removes a fixed set of secrets. The zero of *Scrubber (nil)
// removes nothing.
type Scrubber struct {
	r       *strings.Replacer
	longest int
}

// New returns a Scrubber for secrets, each also matched in the forms the
// variants give (such as a tool's escaping of commas). Empty secrets are
// ignored; with none left it returns nil.
func New(secrets []string, variants ...func(string) string) *Scrubber {
	var olds []string
	add := func(s string) {
		olds = append(olds, s)
		for _, v := range variants {
			if e := v(s); e != s {
				olds = append(olds, e)
			}
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); len(line) >= MinSecretLine && line != s {
				add(line)
			}
		}
	}
	if len(olds) == 0 {
		return nil
	}
	// Longest first: a Replacer tries patterns in argument order, and a
	// secret containing a shorter one must be removed whole.
	slices.SortFunc(olds, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, Redacted)
	}
	return &Scrubber{r: strings.NewReplacer(pairs...), longest: len(olds[0])}
}

// String returns text without any secret.
func (s *Scrubber) String(text string) string {
	if s == nil {
		return text
	}
	return s.r.Replace(text)
}

// Writer returns a writer that scrubs what it passes on to w. A secret may
// arrive split across writes, so it holds back the last bytes that could
// start one until more come or Flush is called.
func (s *Scrubber) Writer(w io.Writer) *Writer {
	return &Writer{s: s, w: w}
}

// Writer is a scrubbing stream; see Scrubber.Writer.
type Writer struct {
	s    *Scrubber
	w    io.Writer
	mu   sync.Mutex
	held []byte
}

// Write scrubs p and what was held back with it. It reports len(p) written
// unless w fails.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.s == nil {
		return sw.w.Write(p)
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	// Scrubbing what was held together with p finds a secret split between
	// them. Scrubbed text holds no secret, so only the last longest-1 bytes
	// can still be the start of one.
	out := sw.s.String(string(sw.held) + string(p))
	keep := min(len(out), sw.s.longest-1)
	sw.held = append(sw.held[:0], out[len(out)-keep:]...)
	if _, err := io.WriteString(sw.w, out[:len(out)-keep]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush passes on what was held back: at the end of a stream, or where the
// reader must see everything so far (a log tail read on failure).
func (sw *Writer) Flush() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.held) == 0 {
		return nil
	}
	_, err := sw.w.Write(sw.held)
	sw.held = sw.held[:0]
	return err
}
