package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDevRunsExampleOutOfTheBox is the README's first command: `kiln dev` with
// no config. It must become healthy, build the bundled example to the end,
// run the AMI example through all five stages against the moto and registry
// it starts (moto_server and packer are installed wherever the tests run),
// run the container example on the buildkitd it starts,
// serve the Temporal Web UI, and stop cleanly on Ctrl-C.
func TestDevRunsExampleOutOfTheBox(t *testing.T) {
	t.Parallel()
	ports := freeDevPorts(t)
	local, err := devserver.FreePorts("127.0.0.1", 2)
	require.NoError(t, err)
	localArgs := []string{"--local-aws-port", strconv.Itoa(local[0]), "--local-registry-port", strconv.Itoa(local[1])}
	dataDir := t.TempDir()
	started := time.Now()
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(dataDir), localArgs...)...)
	waitHealthy(t, dev, ports, 60*time.Second)
	t.Logf("healthy after %s", time.Since(started).Round(100*time.Millisecond))

	run := waitRun(t, ports, 90*time.Second, func(r runSummary) bool { return r.Pipeline == "hello" })
	t.Logf("example run %s finished after %s", run.WorkflowID, time.Since(started).Round(100*time.Millisecond))
	assert.Equal(t, "completed", run.Status)
	assert.Equal(t, "done", run.Stage)
	assert.Equal(t, "manual", run.Event)
	assert.True(t, strings.HasPrefix(run.WorkflowID, "hello/main/manual-"), "workflow ID %q", run.WorkflowID)
	assert.FileExists(t, filepath.Join(dataDir, "example", "kiln.yaml"), "the rendered example config is left for the user")

	ami := waitRun(t, ports, 120*time.Second, func(r runSummary) bool { return r.Pipeline == "ami" })
	t.Logf("AMI example run %s finished after %s", ami.WorkflowID, time.Since(started).Round(100*time.Millisecond))
	assert.Equal(t, "completed", ami.Status, "stderr:\n%s", lastLines(dev.stderr.String(), 30))
	assert.Equal(t, "done", ami.Stage, "build, bake, test, distribute and publish all ran")
	reg := regexp.MustCompile(`registry=(127\.0\.0\.1:\d+)`).FindStringSubmatch(dev.stderr.String())
	require.NotNil(t, reg, "kiln dev logs its registry's address")
	resp, err := http.Get("http://" + reg[1] + "/v2/kiln-examples/hello/tags/list")
	require.NoError(t, err)
	defer resp.Body.Close()
	var tags struct{ Tags []string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tags))
	assert.Subset(t, tags.Tags, []string{"main", "latest"}, "the example image was published")

	// As root with runc and buildkitd (test/run installs both), kiln dev
	// starts its own buildkitd: the container example builds in a busybox
	// image and publishes a Dockerfile image.
	ctr := waitRun(t, ports, 120*time.Second, func(r runSummary) bool { return r.Pipeline == "container" })
	assert.Equal(t, "completed", ctr.Status, "stderr:\n%s", lastLines(dev.stderr.String(), 30))
	assert.Equal(t, "done", ctr.Stage)
	resp, err = http.Get("http://" + reg[1] + "/v2/kiln-examples/hello-docker/tags/list")
	require.NoError(t, err)
	defer resp.Body.Close()
	tags.Tags = nil
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tags))
	assert.Subset(t, tags.Tags, []string{"main", "latest"}, "the Dockerfile image was published")

	assert.Equal(t, 200, httpStatus(fmt.Sprintf("http://127.0.0.1:%d/", ports.ui)), "the Web UI answers")

	require.NoError(t, dev.cmd.Process.Signal(syscall.SIGINT))
	stopping := time.Now()
	code := dev.waitExit(t, 10*time.Second)
	t.Logf("exited %d, %s after SIGINT", code, time.Since(stopping).Round(100*time.Millisecond))
	assert.Equal(t, 0, code, "Ctrl-C is a clean exit; stderr:\n%s", lastLines(dev.stderr.String(), 20))
	assert.Contains(t, dev.stderr.String(), "kiln dev: stopping; no runs in flight\n")

	// The rendered example is a config to copy: it names the local
	// endpoints in one marked block, on ports that stay the same, and a
	// copy runs as it is with kiln dev --config --local-aws.
	rendered, err := os.ReadFile(filepath.Join(dataDir, "example", "kiln.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(rendered), "# ---- local endpoints ----")
	assert.Contains(t, string(rendered), fmt.Sprintf(`vars: {endpoint: "http://127.0.0.1:%d"}`, local[0]))
	assert.Contains(t, string(rendered), fmt.Sprintf("- name: 127.0.0.1:%d/kiln-examples/hello\n", local[1]))
	copied := writeFile(t, t.TempDir(), "my-kiln.yaml", string(rendered))
	again := freeDevPorts(t)
	dev = startKiln(t, cleanEnv(), append(append(again.devArgs(t.TempDir()), localArgs...), "--config", copied, "--local-aws")...)
	waitHealthy(t, dev, again, 60*time.Second)
	_, stderr, code := runKiln(t, 120*time.Second, cleanEnv(), "run", "--pipeline", "ami", "--ref", "main", "--wait", "--temporal-address", again.address())
	assert.Equal(t, 0, code, "the copied config's AMI pipeline: %s", lastLines(stderr, 20))
	assert.Contains(t, stderr, fmt.Sprintf("image      127.0.0.1:%d/kiln-examples/hello@sha256:", local[1]))
}

// TestDevRefusesMissingWebhookSecret starts `kiln dev --config` with a repo
// whose secret variable is unset. Starting anyway would accept any sender's
// webhook, so kiln must exit non-zero and say which repo lacks its secret.
func TestDevRefusesMissingWebhookSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "kiln.yaml", `repos:
  - name: acme/widget
    clone_url: /nonexistent/widget
    webhook_secret: {env: KILN_E2E_UNSET_SECRET}
pipelines:
  - name: widget
    repo: acme/widget
    triggers: {branch: [main]}
    stages:
      build: {buildspec: buildspec.yml}
`)
	require.Empty(t, os.Getenv("KILN_E2E_UNSET_SECRET"))
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), append(ports.devArgs(filepath.Join(dir, "data")), "--config", cfg)...)
	code := dev.waitExit(t, 30*time.Second)
	stderr := dev.stderr.String()
	assert.NotEqual(t, 0, code, "kiln started without a webhook secret")
	assert.Contains(t, stderr, `repo "acme/widget"`)
	assert.Contains(t, stderr, "KILN_E2E_UNSET_SECRET")
	assert.Equal(t, 0, httpStatus(fmt.Sprintf("http://127.0.0.1:%d/healthz", ports.http)), "nothing listens")
}
