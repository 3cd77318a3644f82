package cluster

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
)

// repoName is the repository kiln.yaml lists and the webhooks name.
const repoName = "cluster/app"

// hookSecretEnv holds the repository's webhook secret in kiln serve's
// (and the workers') environment.
const hookSecretEnv = "KILN_CLUSTER_WEBHOOK_SECRET"

// hookSecret signs the tests' webhooks.
const hookSecret = "cluster-webhook-secret"

// bakeRegion is where Packer bakes; copyAccount gets encrypted copies with
// kmsAlias, shareAccount launch permission.
const (
	bakeRegion   = "us-east-1"
	copyAccount  = "222222222222"
	shareAccount = "333333333333"
	kmsAlias     = "alias/kiln-ami"
)

// copyRegions are where the copy pipeline copies to, in copyAccount.
var copyRegions = []string{"eu-west-1", "us-west-2"}

// copyRole is the role kiln assumes in copyAccount; moto lets any role be
// assumed.
const copyRole = "arn:aws:iam::" + copyAccount + ":role/kiln-distribute"

// Each pipeline runs on pushes of the branch of its name, so a test picks
// what a webhook starts by the branch it pushes.
const (
	// quick builds for a second.
	pipeQuick = "quick"
	// slow builds for slowFor, long enough to kill something under it.
	pipeSlow = "slow"
	// ami builds, bakes, tests the AMI, copies it and shares it.
	pipeAMI = "ami"
	// slowbake bakes with a provisioner that sleeps slowFor.
	pipeSlowBake = "slowbake"
	// copy bakes, then copies to copyRegions (held pending by the proxy
	// in the tests that kill a worker mid-copy).
	pipeCopy = "copy"
	// parked runs on pull requests into the parked branch. Their authors
	// are untrusted by the repository's default trust policy, so every run
	// waits for `kiln approve` before its build (benchmarks park 1,000).
	pipeParked = "parked"
)

// slowFor is how long the slow build and the slow bake take.
const slowFor = 15 * time.Second

// kilnYAML is the cluster's one config. Builds record each attempt in
// $STATE/builds, a line with the run ID.
const kilnYAML = `
repos:
  - name: ` + repoName + `
    clone_url: {{.Repo}}
    webhook_secret: {env: ` + hookSecretEnv + `}
pipelines:
  - name: ` + pipeQuick + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeQuick + `]}
    stages:
      build:
        env: {STATE: {{.State}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - umask 0 && printf '%s\n' "$KILN_RUN_ID" >> "$STATE/builds"
                - sleep 1
  - name: ` + pipeSlow + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeSlow + `]}
    stages:
      build:
        env: {STATE: {{.State}}}
        buildspec:
          version: 0.2
          phases:
            build:
              commands:
                - umask 0 && printf '%s\n' "$KILN_RUN_ID" >> "$STATE/builds"
                - sleep {{.Slow}}
  - name: ` + pipeAMI + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeAMI + `]}
    stages:
      build: {buildspec: buildspec.yml, timeout: 2m}
      bake: {template: ami.pkr.hcl, region: ` + bakeRegion + `, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      test:
        timeout: 2m
        commands: ['test -n "$KILN_AMI_ID" && test -n "$KILN_INSTANCE_ID"']
      distribute:
        targets:
          - {account: "` + copyAccount + `", role: ` + copyRole + `, mode: copy, regions: [{region: eu-west-1, kms_key: ` + kmsAlias + `}]}
          - {account: "` + shareAccount + `", mode: share, regions: [{region: ` + bakeRegion + `}]}
  - name: ` + pipeSlowBake + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeSlowBake + `]}
    stages:
      bake: {template: ami.pkr.hcl, region: ` + bakeRegion + `, timeout: 5m, vars: {endpoint: {{.Endpoint}}, script: "sleep {{.Slow}}"}}
  - name: ` + pipeCopy + `
    repo: ` + repoName + `
    triggers: {branch: [` + pipeCopy + `]}
    stages:
      bake: {template: ami.pkr.hcl, region: ` + bakeRegion + `, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      distribute:
        targets:
          - account: "` + copyAccount + `"
            role: ` + copyRole + `
            mode: copy
            regions:
{{- range .CopyRegions}}
              - {region: {{.}}, kms_key: ` + kmsAlias + `}
{{- end}}
  - name: ` + pipeParked + `
    repo: ` + repoName + `
    triggers: {review: {branches: [` + pipeParked + `]}}
    cancel_superseded: false
    stages:
      build: {buildspec: buildspec.yml}
`

// realPacker is the packer the wrapper runs.
const realPacker = "/usr/bin/packer"

// cluster is one test's world: moto behind the recording proxy, Temporal
// on PostgreSQL, kiln serve and the workers, and the git repository they
// build.
type cluster struct {
	t        testing.TB
	moto     *motoserver.Server
	proxy    *awsproxy.Proxy
	temporal *temporalServer
	// client is the test's own Temporal client.
	client client.Client
	serve  *process
	// hook is kiln serve's GitHub webhook URL.
	hook string
	// workers are every worker started, killed ones too, in start order.
	workers []*worker
	// root holds everything; logDir the processes' output.
	root, logDir string
	// repo is the git repository; base its first commit.
	repo, base string
	// config is kiln.yaml; state is where builds write (world-writable:
	// builds run as users of their own).
	config, state string
	// binDir holds the packer wrapper, first in the workers' PATH;
	// packerLog gets a line per packer run: the time and the run ID.
	binDir, packerLog string
	// registry is where the publish stage pushes images.
	registry *ociRegistry
}

// newCluster starts a cluster with n workers and stops all of it when t
// ends.
func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	requirePostgres(t)
	if _, err := os.Stat(realPacker); err != nil {
		t.Fatalf("packer not found at %s: apt-get install -y packer", realPacker)
	}
	root := t.TempDir()
	c := &cluster{t: t, root: root, logDir: filepath.Join(root, "logs"), binDir: filepath.Join(root, "bin"),
		packerLog: filepath.Join(root, "packer-runs.log"), state: sharedDir(t)}
	require.NoError(t, os.MkdirAll(c.logDir, 0o755))
	c.moto = motoserver.Start(t)
	c.proxy = awsproxy.Start(t, c.moto.URL)
	c.proxy.ShareAcrossAccounts()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, region := range copyRegions {
		testkit.CreateKMSAlias(t, ctx, motoAs(c.moto.URL, copyAccount, region), kmsAlias)
	}
	c.startArtifacts(t, ctx)
	c.writeRepo(t, ctx)
	c.writePackerWrapper(t)
	c.temporal = startTemporal(t, c.logDir)
	c.client = c.temporal.client(t)
	c.startServe(t)
	for range n {
		c.startWorker(t)
	}
	return c
}

// writeRepo makes the repository (test/ami's: a buildspec and the Packer
// template) and kiln.yaml.
func (c *cluster) writeRepo(t testing.TB, ctx context.Context) {
	t.Helper()
	c.repo = filepath.Join(c.root, "repo")
	var err error
	c.base, err = gitx.InitRepo(ctx, c.repo, os.DirFS(filepath.Join("..", "ami", "testdata", "repo")), "initial commit")
	require.NoError(t, err)
	tmpl := template.Must(template.New("kiln.yaml").Parse(kilnYAML + publishYAML))
	var buf bytes.Buffer
	// strconv.Quote yields a YAML double-quoted scalar for any path or URL.
	require.NoError(t, tmpl.Execute(&buf, map[string]any{
		"Repo": strconv.Quote(c.repo), "Endpoint": strconv.Quote(c.proxy.URL), "State": strconv.Quote(c.state),
		"Slow": int(slowFor.Seconds()), "CopyRegions": copyRegions,
		"Registry": c.registry.host,
	}))
	c.config = filepath.Join(c.root, "kiln.yaml")
	require.NoError(t, os.WriteFile(c.config, buf.Bytes(), 0o644))
}

// commit adds an empty commit to the repository and returns its SHA, so a
// run bakes a commit no other run has (kiln reuses a tested AMI of the
// same pipeline and commit).
func (c *cluster) commit(t testing.TB) string {
	t.Helper()
	sha, err := gitx.Commit(context.Background(), c.repo, "change")
	require.NoError(t, err)
	return sha
}

// writePackerWrapper writes the packer the workers find first on PATH: it
// records when and for which run it bakes, then becomes the real packer
// (exec keeps the process group and parent-death signal kiln gave it).
func (c *cluster) writePackerWrapper(t testing.TB) {
	t.Helper()
	require.NoError(t, os.MkdirAll(c.binDir, 0o755))
	script := "#!/bin/sh\nprintf '%s %s\\n' \"$(date +%s.%N)\" \"$PKR_VAR_kiln_run_id\" >> " + strconv.Quote(c.packerLog) +
		"\nexec " + realPacker + " \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(c.binDir, "packer"), []byte(script), 0o755))
}

// packerRun is one packer invocation.
type packerRun struct {
	at  time.Time
	run string
}

// packerRuns lists the packer invocations so far, of every run.
func (c *cluster) packerRuns(t *testing.T) []packerRun {
	t.Helper()
	data, err := os.ReadFile(c.packerLog)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []packerRun
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		at, run, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		sec, err := strconv.ParseFloat(at, 64)
		require.NoError(t, err, "packer log line %q", line)
		out = append(out, packerRun{at: time.Unix(0, int64(sec*1e9)), run: run})
	}
	return out
}

// builds returns how many build attempts of run have started: the lines
// the builds wrote to $STATE/builds.
func (c *cluster) builds(run string) int {
	data, _ := os.ReadFile(filepath.Join(c.state, "builds"))
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == run {
			n++
		}
	}
	return n
}

// sharedDir is a directory builds can write to: kiln as root runs them as
// users of their own, who cannot reach into t.TempDir (its parent is 0700).
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-cluster-state-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	return dir
}
