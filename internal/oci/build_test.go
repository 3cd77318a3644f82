package oci_test

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/oci"
)

// writeFiles makes files in a temp dir from name -> content, mode 0644
// unless the name is "app", which is executable.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, content := range files {
		mode := os.FileMode(0o644)
		if n == "app" {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(content), mode))
	}
	return dir
}

// appImage is an image of two files on base, with every config field set.
func appImage(dir, base string) oci.Image {
	return oci.Image{
		Base: base,
		Files: []oci.File{
			{Source: filepath.Join(dir, "app"), Target: "/usr/local/bin/app"},
			{Source: filepath.Join(dir, "config.yaml"), Target: "/etc/app/config.yaml", Mode: 0o600},
		},
		Env:        []string{"APP_ENV=prod"},
		Entrypoint: []string{"/usr/local/bin/app"},
		Cmd:        []string{"serve", "--port=8080"},
		WorkingDir: "/srv",
		Labels:     map[string]string{"org.opencontainers.image.revision": commit},
	}
}

func TestBuildOnBaseFromRegistry(t *testing.T) {
	reg := newTestRegistry(t)
	base := reg.pushRandomBase(t, "acme/base:1")
	dir := writeFiles(t, map[string]string{"app": "#!/bin/sh\necho hi\n", "config.yaml": "port: 8080\n"})
	p := reg.pusher(testPassword)
	ctx := context.Background()

	img, err := p.Build(ctx, appImage(dir, reg.host+"/acme/base:1"))
	require.NoError(t, err)
	res, err := p.Push(ctx, reg.host+"/acme/app", img, moving("latest"))
	require.NoError(t, err)

	got := reg.pull(t, "acme/app:latest")
	digest, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, res.Digest, digest.String())
	baseLayers, _ := base.Layers()
	layers, err := got.Layers()
	require.NoError(t, err)
	require.Len(t, layers, len(baseLayers)+1, "the base's layers and one more")

	// The new layer: parents first, sorted, root-owned, dated the epoch.
	rc, err := layers[len(layers)-1].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		assert.Equal(t, 0, h.Uid)
		assert.Equal(t, 0, h.Gid)
		assert.True(t, h.ModTime.Equal(time.Unix(0, 0)), "%s mtime %v", h.Name, h.ModTime)
		switch h.Name {
		case "usr/local/bin/app":
			assert.Equal(t, int64(0o755), h.Mode, "mode from disk")
		case "etc/app/config.yaml":
			assert.Equal(t, int64(0o600), h.Mode, "mode from File.Mode")
		}
	}
	assert.Equal(t, []string{"etc/", "etc/app/", "etc/app/config.yaml", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"}, names)

	// The flattened filesystem has the files at their targets.
	fs := map[string]string{}
	ftr := tar.NewReader(mutate.Extract(got))
	for {
		h, err := ftr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(ftr)
		fs[h.Name] = string(b)
	}
	assert.Equal(t, "#!/bin/sh\necho hi\n", fs["usr/local/bin/app"])
	assert.Equal(t, "port: 8080\n", fs["etc/app/config.yaml"])

	cfg, err := got.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"APP_ENV=prod"}, cfg.Config.Env)
	assert.Equal(t, []string{"/usr/local/bin/app"}, cfg.Config.Entrypoint)
	assert.Equal(t, []string{"serve", "--port=8080"}, cfg.Config.Cmd)
	assert.Equal(t, "/srv", cfg.Config.WorkingDir)
	assert.Equal(t, commit, cfg.Config.Labels["org.opencontainers.image.revision"])
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, "amd64", cfg.Architecture)
	assert.True(t, cfg.Created.Equal(time.Unix(0, 0)))
}

func TestBuildIsReproducible(t *testing.T) {
	reg := newTestRegistry(t)
	reg.pushRandomBase(t, "acme/base:1")
	dir := writeFiles(t, map[string]string{"app": "bin", "config.yaml": "a: 1\n"})
	p := reg.pusher(testPassword)
	digest := func(img oci.Image) string {
		built, err := p.Build(context.Background(), img)
		require.NoError(t, err)
		d, err := built.Digest()
		require.NoError(t, err)
		return d.String()
	}
	in := appImage(dir, reg.host+"/acme/base:1")
	first := digest(in)
	assert.Equal(t, first, digest(in), "same inputs, same digest")

	reordered := appImage(dir, reg.host+"/acme/base:1")
	reordered.Files[0], reordered.Files[1] = reordered.Files[1], reordered.Files[0]
	assert.Equal(t, first, digest(reordered), "file order does not matter")

	// Touching a file changes its mtime on disk but not the image.
	require.NoError(t, os.Chtimes(filepath.Join(dir, "app"), time.Now(), time.Now().Add(time.Hour)))
	assert.Equal(t, first, digest(in), "disk mtimes do not matter")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("a: 2\n"), 0o644))
	assert.NotEqual(t, first, digest(in), "content matters")
}

func TestBuildScratch(t *testing.T) {
	dir := writeFiles(t, map[string]string{"app": "bin"})
	img, err := (&oci.Pusher{}).Build(context.Background(), oci.Image{
		Base:     "scratch",
		Platform: "linux/arm64",
		Files:    []oci.File{{Source: filepath.Join(dir, "app"), Target: "/app"}},
		Cmd:      []string{"/app"},
	})
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	assert.Len(t, layers, 1)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "arm64", cfg.Architecture)
	assert.Equal(t, []string{"/app"}, cfg.Config.Cmd)
}

func TestBuildBaseErrors(t *testing.T) {
	reg := newTestRegistry(t)
	idx, err := random.Index(256, 1, 2) // children without a platform: linux/amd64
	require.NoError(t, err)
	ref, err := name.ParseReference(reg.host + "/acme/multi:1")
	require.NoError(t, err)
	require.NoError(t, remote.WriteIndex(ref, idx, reg.remoteOptions()...))
	p := reg.pusher(testPassword)
	ctx := context.Background()

	_, err = p.Build(ctx, oci.Image{Base: reg.host + "/acme/multi:1"})
	require.NoError(t, err, "amd64 is in the index")

	_, err = p.Build(ctx, oci.Image{Base: reg.host + "/acme/multi:1", Platform: "linux/arm64"})
	require.ErrorIs(t, err, oci.ErrNotFound)
	assert.Contains(t, err.Error(), "no linux/arm64 image")

	_, err = p.Build(ctx, oci.Image{Base: reg.host + "/acme/missing:1"})
	require.ErrorIs(t, err, oci.ErrNotFound)
	assert.Contains(t, err.Error(), reg.host+"/acme/missing:1")

	_, err = reg.pusher("wrong-password-123").Build(ctx, oci.Image{Base: reg.host + "/acme/multi:1"})
	require.ErrorIs(t, err, oci.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "wrong-password-123")
}

func TestBuildRejectsBadFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{"app": "bin", "config.yaml": "x"})
	app, cfg := filepath.Join(dir, "app"), filepath.Join(dir, "config.yaml")
	cases := []struct {
		files []oci.File
		want  string
	}{
		{[]oci.File{{Source: app, Target: "bin/app"}}, `target "bin/app" must be an absolute file path`},
		{[]oci.File{{Source: app, Target: "/"}}, `target "/" must be an absolute file path`},
		{[]oci.File{{Source: app, Target: "/app"}, {Source: cfg, Target: "/x/../app"}}, "both go to /app"},
		{[]oci.File{{Source: dir, Target: "/d"}}, "not a regular file"},
		{[]oci.File{{Source: app, Target: "/app"}, {Source: cfg, Target: "/app/config.yaml"}}, "needs as a directory"},
		{[]oci.File{{Source: filepath.Join(dir, "nope"), Target: "/nope"}}, "no such file"},
	}
	for _, c := range cases {
		_, err := (&oci.Pusher{}).Build(context.Background(), oci.Image{Files: c.files})
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
		if c.want == "no such file" {
			assert.ErrorIs(t, err, fs.ErrNotExist)
		} else {
			assert.ErrorIs(t, err, oci.ErrInvalid, "retrying cannot fix %s", c.want)
		}
	}
}

// TestBuildBadReferencesAreInvalid: a base or platform that does not parse
// is the config's fault, so the error says it is permanent.
func TestBuildBadReferencesAreInvalid(t *testing.T) {
	_, err := (&oci.Pusher{}).Build(context.Background(), oci.Image{Base: "Not A Reference::1"})
	require.ErrorIs(t, err, oci.ErrInvalid)
	assert.Contains(t, err.Error(), `base image "Not A Reference::1"`)
	_, err = (&oci.Pusher{}).Build(context.Background(), oci.Image{Platform: "linux/amd64/v3/x/y"})
	require.ErrorIs(t, err, oci.ErrInvalid)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
