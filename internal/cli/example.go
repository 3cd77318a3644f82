package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"text/template"

	"github.com/kiln-ci/kiln/examples"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// prepareExample makes, on first use of dir, the example repository and a
// webhook secret, and renders kiln.yaml for them (and for the local AWS and
// registry, when local is not nil) at every start, since their addresses
// change. It returns the config's path, and fresh=true when it made the
// repository just now.
func prepareExample(ctx context.Context, dir string, local *localAWS) (string, bool, error) {
	cfgPath := filepath.Join(dir, "kiln.yaml")
	repo, secret := filepath.Join(dir, "repo"), filepath.Join(dir, "webhook-secret")
	_, err := os.Stat(cfgPath)
	fresh := err != nil
	if fresh {
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
	}
	src, err := examples.Files.ReadFile("kiln.yaml")
	if err != nil {
		return "", false, err
	}
	// strconv.Quote yields a YAML double-quoted scalar, whatever the value holds.
	p := examples.Params{Repo: strconv.Quote(repo), Secret: strconv.Quote(secret)}
	if local != nil {
		p.Registry, p.BuildImage = local.Registry, local.BuildImage
		if local.Endpoint != "" {
			p.AWS = strconv.Quote(local.Endpoint)
		}
	}
	var out bytes.Buffer
	if err := template.Must(template.New("kiln.yaml").Parse(string(src))).Execute(&out, p); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(cfgPath, out.Bytes(), 0o644); err != nil {
		return "", false, err
	}
	return cfgPath, fresh, nil
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
