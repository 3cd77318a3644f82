// Package containers runs builds inside images end to end, on real parts:
// the embedded Temporal server, a kiln worker with a private buildkitd
// (runc, as root) and a loopback registry holding a busybox image, real
// git, moto for Secrets Manager, Parameter Store and SES, and a stub git
// host that keeps the pull-request comment kiln writes. Nothing of BuildKit
// is mocked.
package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
)

// The secrets a build declares, and what they hold.
const (
	apiToken   = "ctr-api-token-7f3e91"   // the worker's CTR_API_TOKEN, declared with env
	dbPassword = "ctr-db-pass-2b8c44"     // Secrets Manager ctr/db, key password
	npmToken   = "ctr-npm-token-a61d0e"   // Parameter Store /ctr/npm-token, a SecureString
	homeMarker = "home-cred-marker-5c0f7" // in the worker's $HOME/.aws/credentials
	ghToken    = "ctr-gh-token-19b2"
	sender     = "kiln@example.com"
)

// workerSecrets are in the worker's environment, as a deployed worker
// holds its own credentials; no build may see them.
var workerSecrets = map[string]string{
	"AWS_SECRET_ACCESS_KEY": "ctr-leak-aws-secret-31c9",
	"REGISTRY_PASSWORD":     "ctr-leak-registry-8d20",
	"GITHUB_TOKEN":          "ctr-leak-github-e4a7",
}

// kilnYAML: every pipeline builds in the busybox image, named by tag so
// the plan has something to pin.
const kilnYAML = `
repos:
  - name: acme/ctr
    clone_url: {{.Repo}}
    webhook_secret: {env: CTR_HOOK_SECRET}
    report: {api_url: {{.GitHub}}, token: {env: CTR_GH_TOKEN}}
pipelines:
  - name: image
    repo: acme/ctr
    triggers: {manual: true}
    stages:
      build:
        timeout: 3m
        environment: {image: {{.Image}}}
        env: {WORKER_HOME: {{.Home}}, DECLARED: declared-value}
        secrets:
          API_TOKEN: {env: CTR_API_TOKEN}
          DB_PASSWORD: {secrets_manager: "ctr/db:password"}
          # The buildspec reads it under its own name; the pipeline allows it.
          NPM_TOKEN_ALLOWED: {parameter_store: /ctr/npm-token}
        buildspec: buildspec.yml
  - name: cache
    repo: acme/ctr
    triggers: {manual: true}
    stages:
      build:
        timeout: 3m
        environment: {image: {{.Image}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out /var/cache/kiln deps
                - cat /var/cache/kiln/runs > out/seen.txt 2>/dev/null || true
                - cat deps/stamp > out/deps.txt 2>/dev/null || true
                - echo "$KILN_RUN_ID" >> /var/cache/kiln/runs
                - echo "$KILN_RUN_ID" > deps/stamp
          cache: {paths: ["/var/cache/kiln/**/*", "deps/*"]}
          artifacts: {files: ["out/*"]}
  - name: junit
    repo: acme/ctr
    triggers: {review: {}}
    notify:
      email: {from: ` + sender + `, to: [dev@example.com], committer: false}
    stages:
      build:
        timeout: 3m
        environment: {image: {{.Image}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p reports
                - printf '<testsuite name="widget" tests="2" failures="1"><testcase classname="widget" name="TestAdd"/><testcase classname="widget" name="TestFrobnicate"><failure message="want 3, got 4"/></testcase></testsuite>\n' > reports/unit.xml
                - echo "1 of 2 tests failed"; exit 1
          reports:
            unit: {files: ["reports/*.xml"]}
  - name: nosecret
    repo: acme/ctr
    triggers: {manual: true}
    stages:
      build:
        environment: {image: {{.Image}}}
        secrets: {DB_PASSWORD: {secrets_manager: "ctr/absent:password"}}
        buildspec: {version: 0.2, phases: {build: {commands: ["echo never runs"]}}}
  - name: quick
    repo: acme/ctr
    triggers: {manual: true}
    stages:
      build:
        environment: {image: {{.Image}}}
        buildspec: {version: 0.2, phases: {build: {commands: ["echo quick"]}}}
  - name: cancel
    repo: acme/ctr
    triggers: {manual: true}
    stages:
      build:
        timeout: 5m
        environment: {image: {{.Image}}}
        buildspec: {version: 0.2, phases: {build: {commands: ["sleep 300 & echo sleeping; wait"]}}}
`

// buildspecYML is the image pipeline's buildspec, a file in the
// repository. It records what the build saw as artifacts for the test to
// read; the secrets' values only as hashes.
const buildspecYML = `version: 0.2
env:
  parameter-store: {NPM_TOKEN: /ctr/npm-token}
  exported-variables: [RESULT]
phases:
  build:
    commands:
      - mkdir -p out reports
      - pwd > out/pwd.txt
      - echo "$CODEBUILD_SRC_DIR" > out/src-dir.txt
      - cp "$CODEBUILD_SRC_DIR/README.md" out/readme.txt
      - cat /etc/passwd > out/passwd.txt
      - command -v bash > out/bash.txt || echo none > out/bash.txt
      - env | sort > out/env.txt
      - tr '\0' '\n' < /proc/1/environ > out/init-env.txt
      - test -e "$WORKER_HOME" && echo present > out/worker-home.txt || echo absent > out/worker-home.txt
      - grep -rsl "home-cred-$(echo marker)" /root /tmp /etc /codebuild /var > out/marker.txt || true
      - for v in "$API_TOKEN" "$DB_PASSWORD" "$NPM_TOKEN"; do printf %s "$v" | sha256sum | cut -d' ' -f1; done > out/secrets.sha256
      - echo "token is $API_TOKEN, db is $DB_PASSWORD, npm is $NPM_TOKEN"
      - printf '<testsuite name="smoke" tests="1"><testcase classname="smoke" name="TestUp"/></testsuite>\n' > reports/smoke.xml
      - RESULT="exported from $(pwd)"
reports:
  smoke: {files: ["reports/*.xml"]}
artifacts:
  files: ["out/*"]
`

// rig is the package's shared fixture.
type rig struct {
	temporal   *testkit.Temporal
	runs       *starter.Runs
	containers *testkit.Containers
	moto       *motoserver.Server
	github     *fakeGitHub
	dataDir    string
	home       string // the worker's HOME
	head       string
}

var it *rig

// runTimeout bounds one run: a checkout, a container start and a short
// build, on a machine that may be busy.
const runTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse() // motoserver asks testing.Verbose before m.Run would parse
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "containers set-up:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	tb := &testkit.MainTB{}
	defer tb.Close()
	defer testkit.Recover(&err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "kiln-containers-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	r := &rig{dataDir: filepath.Join(root, "data"), home: filepath.Join(root, "home"), github: &fakeGitHub{}}
	r.moto = motoserver.Start(tb)
	if r.containers, err = testkit.StartContainers(ctx, filepath.Join(root, "buildkit")); err != nil {
		return 0, err
	}
	defer r.containers.Close()
	if r.head, err = gitx.InitRepo(ctx, filepath.Join(root, "repo"), fstest.MapFS{
		"README.md":     {Data: []byte("# ctr\n")},
		"buildspec.yml": {Data: []byte(buildspecYML)},
	}, "initial"); err != nil {
		return 0, err
	}
	gh := httptest.NewServer(r.github)
	defer gh.Close()
	env := map[string]string{
		"CTR_API_TOKEN": apiToken, "CTR_GH_TOKEN": ghToken, "CTR_HOOK_SECRET": "ctr-hook-secret",
		// The worker's own HOME holds credentials no build may read.
		"HOME": r.home,
	}
	for _, kv := range r.moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range workerSecrets {
		env[k] = v // moto takes any secret key
	}
	for k, v := range env {
		os.Setenv(k, v)
	}
	if err := os.MkdirAll(filepath.Join(r.home, ".aws"), 0o700); err != nil {
		return 0, err
	}
	creds := "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = " + homeMarker + "\n"
	if err := os.WriteFile(filepath.Join(r.home, ".aws", "credentials"), []byte(creds), 0o600); err != nil {
		return 0, err
	}
	if err := r.seedAWS(ctx); err != nil {
		return 0, fmt.Errorf("moto: %w", err)
	}

	var buf bytes.Buffer
	if err := template.Must(template.New("kiln.yaml").Parse(kilnYAML)).Execute(&buf, map[string]string{
		"Repo": strconv.Quote(filepath.Join(root, "repo")), "GitHub": strconv.Quote(gh.URL + "/"),
		"Image": r.containers.BusyboxTag, "Home": strconv.Quote(r.home),
	}); err != nil {
		return 0, err
	}
	cfg, err := config.Parse("kiln.yaml", buf.Bytes())
	if err != nil {
		return 0, err
	}
	bk, err := buildkit.Dial(ctx, r.containers.Daemon.Address)
	if err != nil {
		return 0, err
	}
	defer bk.Close()
	if r.temporal, err = testkit.StartTemporal(ctx); err != nil {
		return 0, err
	}
	defer r.temporal.Close()
	w := worker.New(r.temporal.Client, worker.Options{Config: cfg, DataDir: r.dataDir, MaxConcurrentBuilds: 8,
		Containers: bk, Log: r.temporal.Log.Level(zerolog.WarnLevel)})
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	r.runs = &starter.Runs{Client: r.temporal.Client}
	it = r
	return m.Run(), nil
}

// seedAWS stores the secrets the builds read and verifies the sender the
// notifications come from.
func (r *rig) seedAWS(ctx context.Context) error {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(r.moto.URL),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("ctr/db"), SecretString: aws.String(`{"user": "app", "password": "` + dbPassword + `"}`)}); err != nil {
		return err
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/ctr/npm-token"), Value: aws.String(npmToken), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		return err
	}
	_, err := sesv2.NewFromConfig(cfg).CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(sender)})
	return err
}

// fakeGitHub answers commit statuses and pull request 7's comments as
// GitHub's API does, keeping the comments.
type fakeGitHub struct {
	mu       sync.Mutex
	comments []map[string]any
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+ghToken {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	const issue = "/repos/acme/ctr/issues/7/comments"
	switch {
	case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/statuses/"):
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":1}`)
	case r.Method == http.MethodGet && r.URL.Path == issue:
		_ = json.NewEncoder(w).Encode(g.comments)
	case r.Method == http.MethodPost && r.URL.Path == issue:
		c := map[string]any{"id": 100 + len(g.comments), "body": body["body"]}
		g.comments = append(g.comments, c)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/repos/acme/ctr/issues/comments/"):
		id, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/repos/acme/ctr/issues/comments/"))
		for _, c := range g.comments {
			if c["id"].(int) == id {
				c["body"] = body["body"]
				_ = json.NewEncoder(w).Encode(c)
				return
			}
		}
		http.NotFound(w, r)
	default:
		http.NotFound(w, r)
	}
}

// comment is the body of pull request 7's one comment.
func (g *fakeGitHub) comment() (string, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.comments) == 0 {
		return "", 0
	}
	body, _ := g.comments[0]["body"].(string)
	return body, len(g.comments)
}
