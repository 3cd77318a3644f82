package buildspec

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mustParse parses a buildspec written inline in a test.
func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse("buildspec.yml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

// build is one Run in a fresh source directory, with its log captured.
type build struct {
	dir string
	log bytes.Buffer
	res *Result
	err error
}

// runSpec parses src and runs it in a temp dir; opts may adjust the options.
func runSpec(t *testing.T, src string, opts ...func(*RunOptions)) *build {
	t.Helper()
	b := &build{dir: t.TempDir()}
	o := RunOptions{Dir: b.dir, Log: &b.log, KillGrace: time.Second}
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.res, b.err = mustParse(t, src).Run(ctx, o)
	return b
}

// statuses lists "name=STATUS" per phase, to compare transitions at a glance.
func (b *build) statuses() string {
	var out []string
	for _, p := range b.res.Phases {
		out = append(out, p.Name+"="+p.Status)
	}
	return strings.Join(out, " ")
}

func wantContains(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("missing %q in:\n%s", sub, s)
	}
}

func wantNotContains(t *testing.T, s, sub string) {
	t.Helper()
	if strings.Contains(s, sub) {
		t.Errorf("unexpected %q in:\n%s", sub, s)
	}
}

// wantInOrder checks each part appears after the previous one.
func wantInOrder(t *testing.T, s string, parts ...string) {
	t.Helper()
	rest := s
	for _, p := range parts {
		i := strings.Index(rest, p)
		if i < 0 {
			t.Fatalf("missing %q (in order) in:\n%s", p, s)
		}
		rest = rest[i+len(p):]
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// progressLog records Progress calls; Run may call it from any goroutine.
type progressLog struct {
	mu     sync.Mutex
	events []Progress
}

func (p *progressLog) add(ev Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}
