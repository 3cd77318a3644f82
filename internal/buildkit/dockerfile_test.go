package buildkit_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/test/testkit"
)

const dockerfileSecret = "npm-tok-7c1e55aa90"

// writeDockerfileRepo writes a build context whose Dockerfile has a syntax
// line (ignored offline), a build arg, COPY from the context and from the
// named "artifacts" context, a RUN, and a RUN with a secret mount.
func writeDockerfileRepo(t *testing.T, base string) (ctxDir, artifacts string) {
	t.Helper()
	ctxDir, artifacts = t.TempDir(), t.TempDir()
	files := map[string]string{
		filepath.Join(ctxDir, "Dockerfile"): `# syntax=docker/dockerfile:1
ARG BASE=` + base + `
FROM ${BASE}
ARG GREETING=hello
ARG TOKEN_SUM
COPY app.sh /app/app.sh
COPY --from=artifacts dist/ /app/dist/
RUN echo "$GREETING from the build" > /app/greeting && chmod 755 /app/app.sh
RUN --mount=type=secret,id=NPM_TOKEN test "$(cat /run/secrets/NPM_TOKEN | md5sum)" = "$TOKEN_SUM" && echo used > /app/secret-was-there
WORKDIR /app
ENV APP_MODE=test
`,
		filepath.Join(ctxDir, "app.sh"):             "#!/bin/sh\necho app\n",
		filepath.Join(artifacts, "dist", "lib.txt"): "built by the build stage\n",
	}
	for p, body := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ctxDir, artifacts
}

// TestDockerfileBuildsOnBuildKit builds a real Dockerfile with RUN, COPY, a
// build arg and a secret mount, checks the image in a container before it
// is written, and builds it again: the same commit time gives the same
// digest, from cache. The secret is in no layer.
func TestDockerfileBuildsOnBuildKit(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	c, err := buildkit.Dial(context.Background(), ctrs.Daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctxDir, artifacts := writeDockerfileRepo(t, ctrs.BusyboxTag)
	epoch := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	build := func(layoutDir string, check func(context.Context, *buildkit.Container) error) (*buildkit.Built, string, error) {
		var progress bytes.Buffer
		built, err := c.BuildDockerfile(context.Background(), buildkit.Dockerfile{
			Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"),
			Contexts:  map[string]string{"artifacts": artifacts},
			BuildArgs: map[string]string{"GREETING": "bonjour", "TOKEN_SUM": md5sum(dockerfileSecret)},
			Bases:     map[string]string{ctrs.BusyboxTag: ctrs.Busybox},
			Labels:    map[string]string{"org.opencontainers.image.revision": "abc123"},
			Secrets:   map[string][]byte{"NPM_TOKEN": []byte(dockerfileSecret)},
			Epoch:     epoch, Check: check, Layout: layoutDir, Progress: &progress,
		})
		return built, progress.String(), err
	}

	var checkLog bytes.Buffer
	first, progress, err := build(t.TempDir(), func(ctx context.Context, ctr *buildkit.Container) error {
		spec := &buildspec.Spec{Version: "0.2", Phases: buildspec.Phases{Build: &buildspec.Phase{Commands: []string{
			`test "$(pwd)" = /app && test "$APP_MODE" = test`,
			`test "$(cat greeting)" = "bonjour from the build"`,
			`test "$(cat dist/lib.txt)" = "built by the build stage" && ./app.sh`,
		}}}}
		_, err := spec.Run(ctx, buildspec.RunOptions{Dir: ctr.Config.WorkingDir, Sandbox: ctr, BaseEnv: ctr.Config.Env, Log: &checkLog})
		return err
	})
	if err != nil {
		t.Fatalf("build: %v\n%s\n%s", err, progress, checkLog.String())
	}
	if !strings.Contains(checkLog.String(), "app\n") {
		t.Errorf("the check's log lacks the app's output:\n%s", checkLog.String())
	}
	if strings.Contains(progress, dockerfileSecret) {
		t.Errorf("the secret is in the build's progress")
	}

	layoutDir := t.TempDir()
	second, progress, err := build(layoutDir, nil)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if second.Digest != first.Digest {
		t.Errorf("same commit, digests %s then %s", first.Digest, second.Digest)
	}
	if !strings.Contains(progress, "CACHED") {
		t.Errorf("the second build ran again instead of from cache:\n%s", progress)
	}
	img := layoutImage(t, layoutDir, second.Digest)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.opencontainers.image.revision"] != "abc123" || !cfg.Created.Time.Equal(epoch) {
		t.Errorf("config: labels %v, created %v", cfg.Config.Labels, cfg.Created)
	}
	files := imageFiles(t, img)
	if files["app/secret-was-there"] != "used\n" {
		t.Errorf("the secret mount was not there for RUN: %q", files["app/secret-was-there"])
	}
	for name, body := range files {
		if strings.Contains(body, dockerfileSecret) {
			t.Errorf("the secret is in the image, in %s", name)
		}
	}
}

// TestDockerfileCheckFailureWritesNothing: a failing check fails the build
// with the check's own error, and no image is written.
func TestDockerfileCheckFailureWritesNothing(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	c, err := buildkit.Dial(context.Background(), ctrs.Daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctxDir, artifacts := writeDockerfileRepo(t, ctrs.BusyboxTag)
	layoutDir := t.TempDir()
	want := errors.New("the image's tests failed")
	_, err = c.BuildDockerfile(context.Background(), buildkit.Dockerfile{
		Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"), Contexts: map[string]string{"artifacts": artifacts},
		Secrets: map[string][]byte{"NPM_TOKEN": []byte(dockerfileSecret)}, Layout: layoutDir,
		BuildArgs: map[string]string{"TOKEN_SUM": md5sum(dockerfileSecret)},
		Check:     func(context.Context, *buildkit.Container) error { return want },
	})
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want the check's", err)
	}
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err == nil {
		t.Error("an image was written although its check failed")
	}

	// A Dockerfile that does not parse is invalid, and says why.
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+ctrs.BusyboxTag+"\nFROBNICATE x\n"), 0o644)
	_, err = c.BuildDockerfile(context.Background(), buildkit.Dockerfile{Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"), Layout: t.TempDir()})
	if !errors.Is(err, buildkit.ErrInvalid) || !strings.Contains(err.Error(), "unknown instruction: FROBNICATE") {
		t.Errorf("err = %v, want ErrInvalid naming the instruction", err)
	}
	// A base that does not exist is ErrImageNotFound.
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+ctrs.Registry+"/nope:1\n"), 0o644)
	_, err = c.BuildDockerfile(context.Background(), buildkit.Dockerfile{Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"), Layout: t.TempDir()})
	if !errors.Is(err, buildkit.ErrImageNotFound) {
		t.Errorf("err = %v, want ErrImageNotFound", err)
	}
}

// TestDockerfileTarget builds a named stage of a multi-stage Dockerfile:
// the image holds what that stage made, and nothing of the stages after it.
func TestDockerfileTarget(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	c, err := buildkit.Dial(context.Background(), ctrs.Daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctxDir := t.TempDir()
	dockerfile := "FROM " + ctrs.BusyboxTag + " AS tools\nRUN echo tools > /stage\n" +
		"FROM tools AS release\nRUN echo release > /stage && touch /release-only\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{"tools": "tools\n", "": "release\n"} {
		layoutDir := t.TempDir()
		built, err := c.BuildDockerfile(context.Background(), buildkit.Dockerfile{
			Context: ctxDir, File: filepath.Join(ctxDir, "Dockerfile"), Target: target,
			Bases: map[string]string{ctrs.BusyboxTag: ctrs.Busybox}, Layout: layoutDir,
		})
		if err != nil {
			t.Fatalf("target %q: %v", target, err)
		}
		files := imageFiles(t, layoutImage(t, layoutDir, built.Digest))
		if files["stage"] != want {
			t.Errorf("target %q: /stage = %q, want %q", target, files["stage"], want)
		}
		if _, ok := files["release-only"]; ok == (target == "tools") {
			t.Errorf("target %q: /release-only present = %v", target, ok)
		}
	}
}

// md5sum is what busybox's md5sum prints for s.
func md5sum(s string) string {
	return fmt.Sprintf("%x  -", md5.Sum([]byte(s)))
}

func layoutImage(t *testing.T, dir, digest string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// imageFiles reads every regular file of every layer.
func imageFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				out[h.Name] = string(b)
			}
		}
		rc.Close()
	}
	return out
}
