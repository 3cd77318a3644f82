package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/kiln-ci/kiln/examples"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// prepareExample makes, on first use of dir, the example repository, a webhook
// secret and a rendered kiln.yaml pointing at both. It returns the config's
// path, and fresh=true when it made them just now.
func prepareExample(ctx context.Context, dir string) (string, bool, error) {
	cfgPath := filepath.Join(dir, "kiln.yaml")
	if _, err := os.Stat(cfgPath); err == nil {
		return cfgPath, false, nil
	}
	repo, secret := filepath.Join(dir, "repo"), filepath.Join(dir, "webhook-secret")
	_ = os.RemoveAll(repo) // a half-made example from an interrupted start
	files, err := fs.Sub(examples.Files, "repo")
	if err != nil {
		return "", false, err
	}
	if _, err := gitx.InitRepo(ctx, repo, files, "Example repository for kiln dev"); err != nil {
		return "", false, err
	}
	if err := writeSecret(secret); err != nil {
		return "", false, err
	}
	tmpl, err := examples.Files.ReadFile("kiln.yaml")
	if err != nil {
		return "", false, err
	}
	// strconv.Quote yields a YAML double-quoted scalar, whatever the path holds.
	rendered := strings.NewReplacer(`"{{REPO}}"`, strconv.Quote(repo), `"{{SECRET}}"`, strconv.Quote(secret)).Replace(string(tmpl))
	if err := os.WriteFile(cfgPath, []byte(rendered), 0o644); err != nil {
		return "", false, err
	}
	return cfgPath, true, nil
}

func writeSecret(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// swappableHandler answers 503 until the real handler is installed, so the HTTP
// listener can start before Temporal is up.
type swappableHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swappableHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, `{"error":"kiln is starting"}`, http.StatusServiceUnavailable)
}
