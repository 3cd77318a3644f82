package testkit

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"
)

// FileInImage reads one file out of a pushed image's flattened layers,
// failing the test when it has none at path.
func FileInImage(t testing.TB, ref name.Reference, path string, opts ...remote.Option) string {
	t.Helper()
	img, err := remote.Image(ref, opts...)
	require.NoError(t, err, "pull %s", ref)
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no %s", ref, path)
		}
		require.NoError(t, err, "read %s", ref)
		if strings.TrimPrefix(h.Name, "/") == path {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			return string(b)
		}
	}
}
