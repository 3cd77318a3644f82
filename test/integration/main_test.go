// Package integration runs kiln's pipeline end to end inside one process: the
// embedded Temporal server (internal/devserver), a real worker, the real
// webhook handler served over HTTP, and git repositories made on disk. Nothing
// is mocked, so these tests catch what unit tests with the Temporal test suite
// cannot: visibility queries, search attributes, schedules, heartbeats carrying
// cancellation, and builds that run real processes.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/starter/github"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
)

// secretEnv holds the webhook secret of every test repository, as a deployed
// kiln would read it.
const secretEnv = "KILN_IT_WEBHOOK_SECRET"

// webhookSecret signs the test deliveries.
const webhookSecret = "it-secret-3f9a1c"

// suite is the package's shared fixture. The pipeline task queue is a
// constant, so one worker (and therefore one kiln.yaml) serves every test;
// each test owns its own repository and pipeline so tests can run in parallel.
type suite struct {
	temporal client.Client
	runs     *starter.Runs
	hookURL  string
	// root holds repos/<name> (the clone URLs) and state/, where builds leave
	// PID files and markers for the tests to find, outside any workspace.
	root    string
	dataDir string
}

var it *suite

// kilnYAML is the worker's config. Every pipeline belongs to one test; STATE_DIR
// reaches builds through stage env so they can leave PID files for the test.
const kilnYAML = `
repos:
{{- range .Repos}}
  - name: kiln-it/{{.}}
    clone_url: {{repo .}}
    webhook_secret: {env: ` + secretEnv + `}
{{- end}}
pipelines:
  - name: push
    repo: kiln-it/push
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml, timeout: 2m}
  - name: redeliver
    repo: kiln-it/redeliver
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml, timeout: 2m}
  - name: review
    repo: kiln-it/review
    triggers: {review: {}}
    stages:
      build:
        timeout: 5m
        env: {STATE_DIR: {{state}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - test -e release || { sleep 120 & echo $! > "$STATE_DIR/$(printf %s "$KILN_RUN_ID" | tr / _).pid"; wait $!; }
  - name: inject
    repo: kiln-it/inject
    triggers:
      branch: ["*", "*/*", "*/*/*", "*/*/*/*", "*/*/*/*/*", "*/*/*/*/*/*", "*/*/*/*/*/*/*"]
      review: {}
    stages:
      build:
        timeout: 2m
        buildspec:
          version: 0.2
          env: {variables: {ARTIFACT: out/flow-branch.txt}}
          phases:
            build:
              commands:
                - mkdir -p out
                - printenv FLOW_BRANCH > $ARTIFACT || true
                - printenv KILN_PR_TITLE > out/pr-title.txt || true
          artifacts: {files: ["out/*"]}
  - name: sched
    repo: kiln-it/sched
    triggers: {manual: true}
    stages:
      build:
        timeout: 2m
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out
                - env | grep -E '^(FLOW|KILN)_' | sort > out/env.txt
          artifacts: {files: ["out/*"]}
  - name: refs
    repo: kiln-it/refs
    triggers: {branch: ["**"], tag: ["**"]}
    stages:
      build:
        timeout: 2m
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out
                - printf '%s' "$KILN_REF_NAME" > out/ref.txt
                - git rev-parse HEAD > out/head.txt
          artifacts: {files: ["out/*"]}
  - name: fail
    repo: kiln-it/fail
    triggers: {manual: true}
    stages:
      build:
        timeout: 2m
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - echo "compiling widget"
                - echo "widget.go:3:2 undefined frobnicate" >&2
                - sh -c 'exit 3'
                - echo "this line must not run"
  - name: isolation
    repo: kiln-it/isolation
    triggers: {manual: true}
    stages:
      build:
        timeout: 2m
        env: {DECLARED: declared-value}
        secrets: {DECLARED_SECRET: {env: ` + declaredSecretEnv + `}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out
                - env | sort > out/env.txt
                - ls -A "$HOME" > out/home.txt
                - id -u > out/uid.txt
                - cat /proc/{{pid}}/environ > out/worker-environ.txt 2>&1 || true
                - cat /proc/1/environ > out/init-environ.txt 2>&1 || true
                - cat {{creds}} > out/credentials.txt 2>&1 || true
                - ls -A {{data}} > out/data.txt 2>&1 || true
                - echo "the declared secret is $DECLARED_SECRET"
          artifacts: {files: ["out/*"]}
  - name: needs-image
    repo: kiln-it/needs-image
    triggers: {manual: true}
    stages:
      build:
        environment: {image: registry.example.com/ci/build:1}
        buildspec: {version: 0.2, phases: {build: {commands: ["echo never runs"]}}}
  - name: cancel
    repo: kiln-it/cancel
    triggers: {manual: true}
    stages:
      build:
        timeout: 5m
        env: {STATE_DIR: {{state}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - bash -c 'sleep 300 & echo $! > "$STATE_DIR/$(printf %s "$KILN_RUN_ID" | tr / _).pid"; wait'
`

// repoNames are the test repositories, one per test that needs one.
var repoNames = []string{"push", "redeliver", "review", "inject", "sched", "fail", "cancel", "isolation", "needs-image", "refs"}

// noContainers is why the suite's worker has no container runtime.
var noContainers = errors.New("the integration suite starts no buildkitd")

// declaredSecretEnv is a variable of the worker that the isolation
// pipeline declares as a secret: the one way a worker's value reaches a
// build.
const declaredSecretEnv, declaredSecret = "KILN_IT_DECLARED_SECRET", "it-declared-5a7c"

// workerSecrets are in the worker's environment, as a deployed worker holds
// its own credentials; no build may see them.
var workerSecrets = map[string]string{
	"AWS_SECRET_ACCESS_KEY": "it-leak-aws-secret",
	"REGISTRY_PASSWORD":     "it-leak-registry",
	"GITHUB_TOKEN":          "it-leak-github",
}

// pushBuildspec is the buildspec.yml of the push and redeliver repositories:
// a file in the repository, as most projects have it, that leaves a report as
// an artifact and a recognisable line in the log.
const pushBuildspec = `version: 0.2
phases:
  build:
    commands:
      - echo "building $KILN_REPO at $KILN_COMMIT for $KILN_EVENT"
      - mkdir -p dist
      - printf '%s %s\n' "$KILN_REF_NAME" "$KILN_COMMIT" > dist/report.txt
artifacts:
  files: ["dist/**/*"]
`

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration set-up:", err)
		code = 1
	}
	os.Exit(code)
}

// runSuite starts the shared server, worker and webhook endpoint, runs the
// tests, and tears everything down again, in reverse.
func runSuite(m *testing.M) (int, error) {
	root, err := os.MkdirTemp("", "kiln-it-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	os.Setenv(secretEnv, webhookSecret)
	for k, v := range workerSecrets {
		os.Setenv(k, v)
	}
	os.Setenv(declaredSecretEnv, declaredSecret)
	// ctx bounds the set-up only; nothing started here keeps it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg, err := writeFixture(ctx, root)
	if err != nil {
		return 0, err
	}
	tmp, err := testkit.StartTemporal(ctx)
	if err != nil {
		return 0, err
	}
	defer tmp.Close()
	c, log := tmp.Client, tmp.Log

	dataDir := filepath.Join(root, "data")
	wo := worker.Options{Config: cfg, DataDir: dataDir, MaxConcurrentBuilds: 16, Log: log, NoContainers: noContainers}
	if _, err := worker.NewBuildUsers(&wo); err != nil {
		return 0, err
	}
	w := worker.New(c, wo)
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	secrets, err := cfg.WebhookSecrets()
	if err != nil {
		return 0, err
	}
	runs := &starter.Runs{Client: c}
	hooks := httptest.NewServer(starter.NewMux(starter.Hooks{"github": github.NewHandler(cfg, secrets, runs, log)}, starter.NewHealth()))
	defer hooks.Close()

	it = &suite{temporal: c, runs: runs, hookURL: hooks.URL + "/hooks/github", root: root, dataDir: dataDir}
	return m.Run(), nil
}

// writeFixture makes the test repositories and the state directory, and
// parses kiln.yaml rendered with their paths.
func writeFixture(ctx context.Context, root string) (*config.Config, error) {
	// Builds run as users of their own on a root worker: they reach the
	// state dir through root, and write to it.
	state := filepath.Join(root, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	if err := errors.Join(os.Chmod(root, 0o711), os.Chmod(state, 0o777)); err != nil {
		return nil, err
	}
	creds, err := writeWorkerCredentials(root)
	if err != nil {
		return nil, err
	}
	for _, name := range repoNames {
		files := fstest.MapFS{"README.md": {Data: []byte("# " + name + "\n")}}
		if name == "push" || name == "redeliver" {
			files["buildspec.yml"] = &fstest.MapFile{Data: []byte(pushBuildspec)}
		}
		if _, err := gitx.InitRepo(ctx, filepath.Join(root, "repos", name), files, "initial commit"); err != nil {
			return nil, fmt.Errorf("repo %s: %w", name, err)
		}
	}
	tmpl := template.Must(template.New("kiln.yaml").Funcs(template.FuncMap{
		// strconv.Quote yields a YAML double-quoted scalar for any path.
		"repo":  func(name string) string { return strconv.Quote(filepath.Join(root, "repos", name)) },
		"state": func() string { return strconv.Quote(state) },
		"creds": func() string { return strconv.Quote(creds) },
		"pid":   os.Getpid,
		"data":  func() string { return strconv.Quote(filepath.Join(root, "data")) },
	}).Parse(kilnYAML))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct{ Repos []string }{repoNames}); err != nil {
		return nil, err
	}
	return config.Parse("kiln.yaml", buf.Bytes())
}

// workerCredential is in a credentials file of the worker's, such as
// ~/.aws/credentials; no build may read it.
const workerCredential = "it-leak-credentials-file"

// writeWorkerCredentials writes a worker's ~/.aws/credentials as the AWS
// CLI does (0600), under a HOME that others may enter (0755, as Debian
// makes them), so that only the file's own mode keeps a build out.
func writeWorkerCredentials(root string) (string, error) {
	aws := filepath.Join(root, "worker-home", ".aws")
	if err := os.MkdirAll(aws, 0o755); err != nil {
		return "", err
	}
	if err := errors.Join(os.Chmod(filepath.Dir(aws), 0o755), os.Chmod(aws, 0o755)); err != nil {
		return "", err
	}
	path := filepath.Join(aws, "credentials")
	return path, os.WriteFile(path, []byte("[default]\naws_secret_access_key = "+workerCredential+"\n"), 0o600)
}

// repoDir is the clone URL of a test repository.
func repoDir(name string) string { return filepath.Join(it.root, "repos", name) }

// stateDir is where builds leave PID files, outside their workspaces.
func stateDir() string { return filepath.Join(it.root, "state") }
