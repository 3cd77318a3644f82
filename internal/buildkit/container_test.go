package buildkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/test/testkit"
)

// srcDir is where the tests' containers see the checkout.
const srcDir = "/codebuild/output/src"

func openBusybox(t *testing.T, ctrs *testkit.Containers, spec buildkit.ContainerSpec) (*buildkit.Client, *buildkit.Container) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := buildkit.Dial(ctx, ctrs.Daemon.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if spec.Image == "" {
		spec.Image = ctrs.Busybox
	}
	if spec.SourceDir == "" {
		spec.SourceDir = srcDir
	}
	ctr, err := c.Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { ctr.Close() })
	return c, ctr
}

// TestBuildspecInContainer runs a buildspec in a busybox image with the
// worker's semantics: one shell (cd and variables carry over), finally,
// exported variables, a new shell after a command ended one, the checkout
// at CODEBUILD_SRC_DIR, and artifacts read back out of the container.
func TestBuildspecInContainer(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "input.txt"), []byte("from the checkout\n"), 0o644)
	_, ctr := openBusybox(t, ctrs, buildkit.ContainerSpec{Source: src,
		Secrets: map[string][]byte{"API_TOKEN": []byte("tok-ctr-0a1b2c3d4e")}})
	spec, err := buildspec.Parse("buildspec.yml", []byte(`version: 0.2
env:
  variables: {GREETING: hello}
  exported-variables: [RESULT]
phases:
  build:
    commands:
      - mkdir -p out/deep && cd out
      - echo "$GREETING from $(pwd)" > deep/where.txt
      - cat "$CODEBUILD_SRC_DIR/input.txt" > copied.txt
      - test "$API_TOKEN" = tok-ctr-0a1b2c3d4e && echo "token $API_TOKEN"
      - sleep 300 &
      - exit 0
    finally:
      - echo finally ran
  post_build:
    commands:
      - RESULT="post $(cat out/deep/where.txt)"
      - test -z "$WORKER_ONLY" && test "$(cat /proc/1/environ | tr '\0' '\n' | grep -c WORKER_ONLY)" = 0
artifacts:
  files: ["out/**/*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WORKER_ONLY", "must-not-reach-the-container")
	var log bytes.Buffer
	artifacts := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := spec.Run(ctx, buildspec.RunOptions{
		Dir: srcDir, Sandbox: ctr, Log: &log, ArtifactsDir: artifacts, KillGrace: time.Second,
		BaseEnv: ctr.Config.Env,
		Secrets: []buildspec.Secret{{Name: "API_TOKEN", Value: "tok-ctr-0a1b2c3d4e"}},
	})
	var cmdErr *buildspec.CommandError
	if !errors.As(err, &cmdErr) || cmdErr.Command != "exit 0" {
		t.Fatalf("err = %v, want the build to fail at exit 0 (it ends the shell)\n%s", err, log.String())
	}
	if got := statuses(res); got != "build=FAILED post_build=SUCCEEDED" {
		t.Fatalf("phases = %s\n%s", got, log.String())
	}
	out := log.String()
	for _, want := range []string{"finally ran", "token <sensitive>", "later commands run in a new shell"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "0a1b2c3d4e") {
		t.Errorf("the secret reached the log:\n%s", out)
	}
	if got := res.Exported["RESULT"]; got != "post hello from "+srcDir+"/out" {
		t.Errorf("RESULT = %q", got)
	}

	// Artifacts come only from a good build; read the tree back directly.
	fsys, err := ctr.Source()
	if err != nil {
		t.Fatal(err)
	}
	where, err := readFS(fsys, "out/deep/where.txt")
	if err != nil || where != "hello from "+srcDir+"/out\n" {
		t.Errorf("out/deep/where.txt = %q, %v", where, err)
	}
	copied, err := readFS(fsys, "out/copied.txt")
	if err != nil || copied != "from the checkout\n" {
		t.Errorf("out/copied.txt = %q, %v", copied, err)
	}
}

// TestContainerArtifactsAndCancel: a good build's artifacts are copied out
// of the container; a cancelled one leaves no container running in
// buildkitd.
func TestContainerArtifactsAndCancel(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	src := t.TempDir()
	_, ctr := openBusybox(t, ctrs, buildkit.ContainerSpec{Source: src})
	spec, err := buildspec.Parse("buildspec.yml", []byte(`version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/bin && printf '#!/bin/sh\necho hi\n' > dist/bin/app && chmod 755 dist/bin/app
      - head -c 9000000 /dev/zero > dist/big.bin
      - sleep 300 &
artifacts:
  files: ["dist/**/*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	artifacts := t.TempDir()
	var log bytes.Buffer
	t0 := time.Now()
	res, err := spec.Run(context.Background(), buildspec.RunOptions{Dir: srcDir, Sandbox: ctr, Log: &log,
		ArtifactsDir: artifacts, BaseEnv: ctr.Config.Env})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	t.Logf("build took %s", time.Since(t0))
	if got := strings.Join(res.Artifacts, ","); got != "dist/big.bin,dist/bin/app" {
		t.Errorf("artifacts = %s", got)
	}
	fi, err := os.Stat(filepath.Join(artifacts, "dist/bin/app"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dist/bin/app: %v, %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(artifacts, "dist/big.bin")); err != nil || fi.Size() != 9000000 {
		t.Errorf("dist/big.bin: %v, %v", fi, err)
	}
	ctr.Close()

	_, ctr2 := openBusybox(t, ctrs, buildkit.ContainerSpec{Source: src})
	slow, _ := buildspec.Parse("buildspec.yml", []byte("version: 0.2\nphases:\n  build:\n    commands: [sleep 300]\n"))
	ctx, cancel := context.WithCancel(context.Background())
	during := make(chan int, 1)
	go func() {
		time.Sleep(2 * time.Second)
		n, _ := ctrs.Running()
		during <- n
		cancel()
	}()
	start := time.Now()
	_, err = slow.Run(ctx, buildspec.RunOptions{Dir: srcDir, Sandbox: ctr2, Log: &log, BaseEnv: ctr2.Config.Env, KillGrace: time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	ctr2.Close()
	t.Logf("cancel took %s", time.Since(start))
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the cancel took %s", took)
	}
	if n := <-during; n != 1 {
		t.Errorf("%d containers ran during the build, want 1: the count below would prove nothing", n)
	}
	if n := runningContainers(t, ctrs); n != 0 {
		t.Errorf("%d containers still run in buildkitd after the cancel", n)
	}
}

// TestArtifactsUnderACachePath: a cache path inside the source directory
// (maven's target/) is a mount of its own; the build's outputs there are
// still collected as artifacts.
func TestArtifactsUnderACachePath(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	_, ctr := openBusybox(t, ctrs, buildkit.ContainerSpec{Source: t.TempDir(),
		Caches: []buildkit.Cache{{ID: "kiln-test/" + t.Name(), Path: srcDir + "/target"}}})
	spec, err := buildspec.Parse("buildspec.yml", []byte(`version: 0.2
phases:
  build:
    commands:
      - mkdir -p target/classes && echo jar > target/app.jar && echo class > target/classes/A.class
artifacts:
  files: ["target/*.jar", "target/**/*.class"]
`))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	artifacts := t.TempDir()
	res, err := spec.Run(context.Background(), buildspec.RunOptions{Dir: srcDir, Sandbox: ctr, Log: &log,
		ArtifactsDir: artifacts, BaseEnv: ctr.Config.Env})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	if got := strings.Join(res.Artifacts, ","); got != "target/app.jar,target/classes/A.class" {
		t.Errorf("artifacts = %q\n%s", got, log.String())
	}
	if b, err := os.ReadFile(filepath.Join(artifacts, "target", "app.jar")); err != nil || string(b) != "jar\n" {
		t.Errorf("target/app.jar = %q, %v", b, err)
	}
}

// runningContainers counts the containers the test's buildkitd runs.
func runningContainers(t *testing.T, ctrs *testkit.Containers) int {
	t.Helper()
	n, err := ctrs.Running()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func statuses(res *buildspec.Result) string {
	var out []string
	for _, p := range res.Phases {
		out = append(out, p.Name+"="+p.Status)
	}
	return strings.Join(out, " ")
}

func readFS(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	return string(b), err
}

// TestContainerCannotReachTheWorker: a build's container is on a bridge of
// its own and fenced off the worker: a server listening on every
// interface of the worker (as a webhook receiver or Temporal may) does
// not answer it, nor would the metadata service with the worker's
// credentials.
func TestContainerCannotReachTheWorker(t *testing.T) {
	ctrs := testkit.RequireContainers(t)
	if !ctrs.Daemon.Network.Isolated {
		t.Fatalf("builds share the worker's network: %s", ctrs.Daemon.Network.Why)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "worker-secret-page") })}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ip := workerIP(t)
	if resp, err := http.Get(fmt.Sprintf("http://%s:%d/", ip, port)); err != nil {
		t.Fatalf("the worker cannot reach its own server at %s: %v", ip, err)
	} else {
		resp.Body.Close()
	}

	_, ctr := openBusybox(t, ctrs, buildkit.ContainerSpec{Source: t.TempDir()})
	spec, err := buildspec.Parse("buildspec.yml", []byte(fmt.Sprintf(`version: 0.2
phases:
  build:
    commands:
      - if printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %d | grep -q worker-secret-page; then echo VERDICT-REACHED; else echo VERDICT-BLOCKED; fi
`, ip, port)))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := spec.Run(context.Background(), buildspec.RunOptions{Dir: srcDir, Sandbox: ctr, Log: &log, BaseEnv: ctr.Config.Env}); err != nil {
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	// The command's own banner holds both words: read only its output.
	var verdict []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.HasPrefix(line, "VERDICT-") {
			verdict = append(verdict, line)
		}
	}
	if strings.Join(verdict, ",") != "VERDICT-BLOCKED" {
		t.Errorf("the container reached the worker's server:\n%s", log.String())
	}
}

// workerIP is an address of this machine other than loopback.
func workerIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !strings.HasPrefix(n.IP.String(), "10.10.") {
			return n.IP.String()
		}
	}
	t.Fatal("this machine has no address but loopback")
	return ""
}
