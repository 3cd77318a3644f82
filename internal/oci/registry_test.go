package oci_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

const (
	testUser     = "kiln"
	testPassword = "hunter2-correct-horse"
)

// testRegistry is ggcr's in-process registry behind basic auth, recording
// every request so tests can say what a push sent.
type testRegistry struct {
	host string // "127.0.0.1:port", which ggcr talks to over plain HTTP

	mu       sync.Mutex
	reqs     []string // "METHOD /path"
	denyList bool     // answer tag listing 403, as a token without list scope gets
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr := &testRegistry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.reqs = append(tr.reqs, r.Method+" "+r.URL.Path)
		deny := tr.denyList && strings.HasSuffix(r.URL.Path, "/tags/list")
		tr.mu.Unlock()
		if deny {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="kiln-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// pusher returns a Pusher logged in to the registry with password.
func (tr *testRegistry) pusher(password string) *oci.Pusher {
	return &oci.Pusher{Auth: map[string]oci.Auth{tr.host: {Username: testUser, Password: password}}}
}

// reset forgets the requests so far.
func (tr *testRegistry) reset() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.reqs = nil
}

// count returns how many requests used one of methods on a path holding part.
func (tr *testRegistry) count(part string, methods ...string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.reqs {
		method, path, _ := strings.Cut(r, " ")
		for _, m := range methods {
			if m == method && strings.Contains(path, part) {
				n++
			}
		}
	}
	return n
}

// blobUploads counts the requests that start, send or finish a blob upload.
func (tr *testRegistry) blobUploads() int {
	return tr.count("/blobs/", http.MethodPost, http.MethodPatch, http.MethodPut)
}

func (tr *testRegistry) remoteOptions() []remote.Option {
	return []remote.Option{remote.WithAuth(&authn.Basic{Username: testUser, Password: testPassword})}
}

// pushRandomBase writes a small random image to repo:tag and returns it.
func (tr *testRegistry) pushRandomBase(t *testing.T, repoTag string) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	require.NoError(t, err)
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, tr.remoteOptions()...))
	return img
}

// pull reads an image back from the registry.
func (tr *testRegistry) pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(tr.host + "/" + ref)
	require.NoError(t, err)
	img, err := remote.Image(r, tr.remoteOptions()...)
	require.NoError(t, err)
	return img
}
