package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/stretchr/testify/require"
)

// ociRegistry is the registry the publish stage pushes to:
// go-containerregistry's, on loopback (which kiln reaches over plain
// HTTP), behind a handler that records every manifest PUT and can hold one
// blob upload until the test lets it go, so a worker can be killed in the
// middle of a push.
type ociRegistry struct {
	// host is host:port, as image names start.
	host  string
	inner http.Handler
	mu    sync.Mutex
	puts  []manifestPut
	hold  *uploadHold
}

// manifestPut is one PUT /v2/<repo>/manifests/<ref> the registry answered.
type manifestPut struct {
	repo, ref string
	// digest is the sha256 of the manifest sent.
	digest string
	status int
}

// uploadHold holds the first blob upload (a PATCH or PUT under
// /v2/<repo>/blobs/uploads/) to repo: caught is closed when it arrives,
// and it goes on to the registry once release is called.
type uploadHold struct {
	repo      string
	caught    chan struct{}
	released  chan struct{}
	catchOnce sync.Once
	relOnce   sync.Once
}

// release lets the held upload, if any, go on; later ones are not held.
func (h *uploadHold) release() { h.relOnce.Do(func() { close(h.released) }) }

// startRegistry starts the cluster's registry until t ends.
func startRegistry(t testing.TB) *ociRegistry {
	t.Helper()
	r := &ociRegistry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(r)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	t.Cleanup(func() {
		r.mu.Lock()
		if r.hold != nil {
			r.hold.release() // Close waits for the held handler
		}
		r.mu.Unlock()
		srv.Close()
	})
	return r
}

// holdUpload arms a hold on the next blob upload to repo.
func (r *ociRegistry) holdUpload(repo string) *uploadHold {
	h := &uploadHold{repo: repo, caught: make(chan struct{}), released: make(chan struct{})}
	r.mu.Lock()
	r.hold = h
	r.mu.Unlock()
	return h
}

func (r *ociRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	repo, kind, ref := splitRegistryPath(req.URL.Path)
	switch {
	case kind == "manifests" && req.Method == http.MethodPut:
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r.inner.ServeHTTP(sw, req)
		r.mu.Lock()
		r.puts = append(r.puts, manifestPut{repo: repo, ref: ref, digest: "sha256:" + hex.EncodeToString(sum[:]), status: sw.status})
		r.mu.Unlock()
		return
	case kind == "blobs" && strings.HasPrefix(ref, "uploads/") && (req.Method == http.MethodPatch || req.Method == http.MethodPut):
		r.mu.Lock()
		h := r.hold
		r.mu.Unlock()
		if h != nil && h.repo == repo {
			held := false
			h.catchOnce.Do(func() { held = true; close(h.caught) })
			if held {
				<-h.released
			}
		}
	}
	r.inner.ServeHTTP(w, req)
}

// manifestPuts returns the manifest PUTs to repo the registry answered
// 201, in order.
func (r *ociRegistry) manifestPuts(repo string) []manifestPut {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []manifestPut
	for _, p := range r.puts {
		if p.repo == repo && p.status == http.StatusCreated {
			out = append(out, p)
		}
	}
	return out
}

// splitRegistryPath splits /v2/<repo>/<kind>/<ref> (kind: manifests or
// blobs; a repository name has slashes of its own).
func splitRegistryPath(path string) (repo, kind, ref string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", ""
	}
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, k); i >= 0 {
			return rest[:i], strings.Trim(k, "/"), rest[i+len(k):]
		}
	}
	return "", "", ""
}

// statusWriter notes the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// tagDigest is the digest the tag of repo points at.
func (r *ociRegistry) tagDigest(t testing.TB, repo, tag string) string {
	t.Helper()
	ref, err := name.NewTag(r.host+"/"+repo+":"+tag, name.Insecure)
	require.NoError(t, err)
	d, err := remote.Head(ref)
	require.NoError(t, err, "HEAD %s", ref)
	return d.Digest.String()
}

// fileInImage reads one file out of the image repo@digest.
func (r *ociRegistry) fileInImage(t testing.TB, repo, digest, path string) string {
	t.Helper()
	ref, err := name.NewDigest(r.host+"/"+repo+"@"+digest, name.Insecure)
	require.NoError(t, err)
	return testkit.FileInImage(t, ref, path)
}
