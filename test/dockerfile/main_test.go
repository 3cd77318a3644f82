// Package dockerfile tests publish.images[].dockerfile end to end on real
// parts: the embedded Temporal server, a kiln worker with a private
// buildkitd (runc), real git, and a loopback registry holding the busybox
// base image. A pipeline's build leaves an artifact; its publish stage
// builds a Dockerfile that copies it in, reads a declared secret through a
// secret mount, tests the new image in a container of it, and pushes it
// with the usual tag rules.
package dockerfile

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"strconv"
	"testing"
	"testing/fstest"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
)

// npmToken is the declared secret the Dockerfile's RUN reads.
const npmToken = "npm-df-3be1c7d9e2"

const kilnYAML = `
repos:
  - name: acme/df
    clone_url: {{.Repo}}
    webhook_secret: {env: KILN_DF_HOOK}
pipelines:
{{- range $name, $test := .Pipelines}}
  - name: {{$name}}
    repo: acme/df
    triggers: {manual: true}
    stages:
      build:
        buildspec:
          version: 0.2
          phases:
            build:
              commands: ['mkdir -p dist && echo "lib of $KILN_COMMIT" > dist/lib.txt']
          artifacts: {files: ["dist/**"]}
      publish:
        images:
          - name: {{$.Registry}}/acme/{{$name}}
            insecure: true
            dockerfile: docker/Dockerfile
            context: .
            build_args: {GREETING: bonjour, TOKEN_SUM: "{{$.TokenSum}}"}
            secrets: {NPM_TOKEN: {env: KILN_DF_NPM_TOKEN}}
            test: {commands: [{{$test}}]}
{{- end}}
`

var repoFiles = fstest.MapFS{
	"docker/Dockerfile": {Data: []byte(`# syntax=docker/dockerfile:1
ARG BASE
FROM ${BASE}
ARG GREETING=hello
ARG TOKEN_SUM
COPY app.sh /app/app.sh
COPY --from=artifacts dist/ /app/dist/
RUN echo "$GREETING from the Dockerfile" > /app/greeting
RUN --mount=type=secret,id=NPM_TOKEN test "$(md5sum < /run/secrets/NPM_TOKEN)" = "$TOKEN_SUM" && touch /app/secret-checked
WORKDIR /app
`)},
	"app.sh": {Data: []byte("#!/bin/sh\necho \"app says $(cat greeting)\"\n"), Mode: 0o755},
}

// rig is the package's shared fixture.
type rig struct {
	temporal *testkit.Temporal
	runs     *starter.Runs
	ctrs     *testkit.Containers
	head     string
	dataDir  string
}

var it *rig

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile set-up:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := os.MkdirTemp("", "kiln-dockerfile-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	r := &rig{dataDir: root + "/data"}
	if r.ctrs, err = testkit.StartContainers(ctx, root+"/buildkit"); err != nil {
		return 0, err
	}
	defer r.ctrs.Close()
	os.Setenv("KILN_DF_HOOK", "hook")
	os.Setenv("KILN_DF_NPM_TOKEN", npmToken)
	files := fstest.MapFS{}
	for k, v := range repoFiles {
		files[k] = v
	}
	// The base comes in as a build arg, as real Dockerfiles often take it.
	if r.head, err = gitx.InitRepo(ctx, root+"/repo", files, "initial"); err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	err = template.Must(template.New("kiln.yaml").Parse(kilnYAML)).Execute(&buf, map[string]any{
		"Repo": strconv.Quote(root + "/repo"), "Registry": r.ctrs.Registry,
		"TokenSum": fmt.Sprintf("%x  -", md5.Sum([]byte(npmToken))),
		"Pipelines": map[string]string{
			"df":    `./app.sh, 'test "$(cat dist/lib.txt)" = "lib of $KILN_COMMIT"', test -e secret-checked`,
			"dfbad": `./app.sh, 'echo "the image is broken" >&2; exit 4'`,
		},
	})
	if err != nil {
		return 0, err
	}
	cfg, err := config.Parse("kiln.yaml", bytes.ReplaceAll(buf.Bytes(), []byte("GREETING: bonjour,"),
		[]byte("GREETING: bonjour, BASE: "+r.ctrs.BusyboxTag+",")))
	if err != nil {
		return 0, err
	}
	if r.temporal, err = testkit.StartTemporal(ctx); err != nil {
		return 0, err
	}
	defer r.temporal.Close()
	bk, err := buildkit.Dial(ctx, r.ctrs.Daemon.Address)
	if err != nil {
		return 0, err
	}
	defer bk.Close()
	w := worker.New(r.temporal.Client, worker.Options{Config: cfg, DataDir: r.dataDir, Containers: bk,
		Log: r.temporal.Log.Level(zerolog.WarnLevel)})
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	r.runs = &starter.Runs{Client: r.temporal.Client}
	it = r
	return m.Run(), nil
}
