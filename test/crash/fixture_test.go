package crash

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
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
)

// pipeline is the one pipeline of the fixture's kiln.yaml.
const pipeline = "crash"

// bakeRegion is where Packer bakes the source AMI the targets copy.
const bakeRegion = "us-east-1"

// pendingFor is how long the proxy keeps each copy pending: long enough to
// see all of them pending and kill the worker, short enough that they are
// available by the time Temporal retries the killed attempts.
const pendingFor = 8 * time.Second

// hookSecretEnv holds the repository's webhook secret, which kiln.yaml must
// name although the test starts its run by hand.
const hookSecretEnv = "KILN_CRASH_WEBHOOK_SECRET"

// realPacker is the packer the wrapper script runs.
const realPacker = "/usr/bin/packer"

// targetAccounts and targetRegions span the distribution: a copy into every
// account and region, each made as the account's kiln-distribute role.
var (
	targetAccounts = []string{"222222222222", "333333333333"}
	targetRegions  = []string{"eu-west-1", "us-west-2", "ap-southeast-2"}
)

// kmsAlias encrypts the copies; set-up creates it in every target.
const kmsAlias = "alias/kiln-ami"

// roleOf is the role kiln assumes in account.
func roleOf(account string) string { return "arn:aws:iam::" + account + ":role/kiln-distribute" }

// kilnYAML bakes as test/ami does (packer 1.6.6 reaches moto through the
// endpoint variable) and copies to every target account and region.
const kilnYAML = `
repos:
  - name: kiln-crash/app
    clone_url: {{.Repo}}
    webhook_secret: {env: ` + hookSecretEnv + `}
pipelines:
  - name: ` + pipeline + `
    repo: kiln-crash/app
    triggers: {manual: true}
    stages:
      bake:
        template: ami.pkr.hcl
        region: ` + bakeRegion + `
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}}
      distribute:
        targets:
{{- range .Accounts}}
          - account: "{{.}}"
            role: {{role .}}
            mode: copy
            regions:
{{- range $.Regions}}
              - {region: {{.}}, kms_key: {{$.KMS}}}
{{- end}}
{{- end}}
`

// fixture is one test's world: moto behind the proxy, the Temporal server,
// and what a kiln worker process needs to run against them.
type fixture struct {
	moto     *motoserver.Server
	proxy    *awsproxy.Proxy
	temporal *testkit.Temporal
	runs     *starter.Runs
	// config is kiln.yaml, dataDir the workers' shared --data-dir.
	config, dataDir string
	// binDir holds the packer wrapper, first in the workers' PATH; packerLog
	// gets one line per packer invocation, the run ID it baked for.
	binDir, packerLog string
	// logDir gets each worker process's output.
	logDir string
	// env is the workers' environment; nil means workerEnv's.
	env []string
}

// setUp starts moto, the proxy and Temporal for t, creates the KMS key in
// every target, and writes the repository, kiln.yaml and packer wrapper.
// Everything stops when t ends.
func setUp(t *testing.T) *fixture {
	t.Helper()
	if _, err := os.Stat(realPacker); err != nil {
		t.Fatalf("packer not found at %s: apt-get install -y packer", realPacker)
	}
	root := t.TempDir()
	f := &fixture{dataDir: filepath.Join(root, "data"), binDir: filepath.Join(root, "bin"),
		packerLog: filepath.Join(root, "packer-runs.log"), logDir: filepath.Join(root, "logs")}
	require.NoError(t, os.MkdirAll(f.logDir, 0o755))
	f.moto = motoserver.Start(t)
	f.proxy = awsproxy.Start(t, f.moto.URL)
	f.proxy.ShareAcrossAccounts()
	f.proxy.PendingFor(pendingFor)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, account := range targetAccounts {
		for _, region := range targetRegions {
			testkit.CreateKMSAlias(t, ctx, asAccount(f.moto.URL, account, region), kmsAlias)
		}
	}
	tmp, err := testkit.StartTemporal(ctx)
	require.NoError(t, err)
	t.Cleanup(tmp.Close)
	f.temporal, f.runs = tmp, &starter.Runs{Client: tmp.Client}

	repo := filepath.Join(root, "repo")
	_, err = gitx.InitRepo(ctx, repo, os.DirFS(filepath.Join("..", "ami", "testdata", "repo")), "initial commit")
	require.NoError(t, err)
	f.config = filepath.Join(root, "kiln.yaml")
	require.NoError(t, os.WriteFile(f.config, renderConfig(t, repo, f.proxy.URL), 0o644))
	f.writePackerWrapper(t)
	return f
}

// renderConfig is kilnYAML for the repository at repo and the proxy's URL.
func renderConfig(t *testing.T, repo, endpoint string) []byte {
	t.Helper()
	tmpl := template.Must(template.New("kiln.yaml").Funcs(template.FuncMap{"role": roleOf}).Parse(kilnYAML))
	var buf bytes.Buffer
	// strconv.Quote yields a YAML double-quoted scalar for any path or URL.
	require.NoError(t, tmpl.Execute(&buf, map[string]any{
		"Repo": strconv.Quote(repo), "Endpoint": strconv.Quote(endpoint),
		"Accounts": targetAccounts, "Regions": targetRegions, "KMS": kmsAlias,
	}))
	return buf.Bytes()
}

// writePackerWrapper writes the `packer` the workers find first in PATH: it
// records the run it bakes for, then becomes the real packer, so it stays in
// the process group kiln (and the test's SIGKILL) signals.
func (f *fixture) writePackerWrapper(t *testing.T) {
	t.Helper()
	require.NoError(t, os.MkdirAll(f.binDir, 0o755))
	script := "#!/bin/sh\nprintf '%s\\n' \"$PKR_VAR_kiln_run_id\" >> " + strconv.Quote(f.packerLog) +
		"\nexec " + realPacker + " \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(f.binDir, "packer"), []byte(script), 0o755))
}

// packerRuns returns the run ID of every packer invocation so far.
func (f *fixture) packerRuns(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(f.packerLog)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(string(data))
}

// client is the test's own Temporal client.
func (f *fixture) client() client.Client { return f.temporal.Client }
