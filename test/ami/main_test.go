// Package ami tests the bake and test stages on real parts: the embedded Temporal server
// (internal/devserver), a real kiln worker, Debian's packer 1.6.6 and a private
// moto_server, with every EC2 call, kiln's and Packer's, going through the
// recording, fault-injecting proxy (test/awsproxy). They prove what unit tests
// with mocked activities cannot: that the AMIs Packer made are the ones kiln
// tags, that a tested AMI is reused, that a retry after Packer succeeded tags
// instead of baking twice, that a secret variable reaches neither the log
// nor the workflow history, and that the test stage's instance is launched as
// configured and always terminated.
package ami

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/gitx"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/worker"
)

// secretEnv holds the bake's secret_token, read by the worker at bake time.
const secretEnv = "KILN_TEST_BAKE_SECRET"

// hookSecretEnv holds the repository's webhook secret, which kiln.yaml must
// name although these tests start runs manually.
const hookSecretEnv = "KILN_AMI_WEBHOOK_SECRET"

// stateEnv names the directory the test stage's commands write what they saw
// to, so the tests can read it.
const stateEnv = "KILN_AMI_TEST_STATE"

// realPacker is the packer the wrapper script runs.
const realPacker = "/usr/bin/packer"

// suite is the package's shared fixture: one moto, one proxy, one worker
// (the task queue is a constant, so one kiln.yaml serves every test). Each
// test owns a pipeline, and AMIs are found by pipeline and run, so tests run
// in parallel.
type suite struct {
	temporal client.Client
	runs     *starter.Runs
	moto     *motoserver.Server
	proxy    *awsproxy.Proxy
	dataDir  string
	// packerLog gets one line per packer invocation: the run ID it baked for.
	packerLog string
	// head is the test repository's only commit.
	head string
	// secret is this process's random secret_token value.
	secret string
	// stateDir is where test commands write (stateEnv).
	stateDir string
	// subnet and group are moto's, made for the testnet pipeline's instance.
	subnet, group string
}

var it *suite

// kilnYAML is the worker's config, one pipeline per test. The resume
// pipeline bakes in eu-west-1 so the CreateTags faults its test injects there
// cannot touch the other tests' bakes, all in us-east-1.
const kilnYAML = `
repos:
  - name: kiln-ami/app
    clone_url: {{.Repo}}
    webhook_secret: {env: ` + hookSecretEnv + `}
pipelines:
  - name: tags
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      build: {buildspec: buildspec.yml, timeout: 2m}
      bake:
        template: ami.pkr.hcl
        region: us-east-1
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}}
  - name: reuse
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake:
        template: ami.pkr.hcl
        region: us-east-1
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}}
  - name: resume
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake:
        template: ami.pkr.hcl
        region: eu-west-1
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}, region: eu-west-1}
  - name: secret
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake:
        template: ami.pkr.hcl
        region: us-east-1
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}}
        secret_vars:
          secret_token: {env: ` + secretEnv + `}
  - name: fail
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake:
        template: ami.pkr.hcl
        region: us-east-1
        timeout: 5m
        vars: {endpoint: {{.Endpoint}}, script: "exit 7"}
  - name: testpass
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      test:
        instance_type: t3.small
        subnet_id: {{.Subnet}}
        security_group_ids: [{{.Group}}]
        timeout: 2m
        env: {` + stateEnv + `: {{.State}}}
        commands:
          - test -n "$KILN_AMI_ID" && test -n "$KILN_INSTANCE_ID" && test -n "$KILN_INSTANCE_IP" && test -n "$KILN_REGION"
          - printf '%s\n' "$KILN_AMI_ID" "$KILN_INSTANCE_ID" "$KILN_INSTANCE_IP" "$KILN_REGION" > "$` + stateEnv + `/$KILN_AMI_ID.env"
  - name: testfail
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      test: {timeout: 2m, commands: [echo testing the AMI, exit 4]}
      distribute:
        targets:
          - {account: "222222222222", role: ` + distributeRole + `, mode: copy, regions: [{region: eu-west-1, kms_key: ` + kmsAlias + `}]}
          - {account: "333333333333", mode: share, regions: [{region: us-east-1}]}
  - name: distribute
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      test:
        timeout: 2m
        commands:
          - test "$KILN_REGION" = us-east-1 && test -n "$KILN_AMI_ID" && test -n "$KILN_INSTANCE_ID"
      distribute:
        targets:
          - account: "222222222222"
            role: ` + distributeRole + `
            mode: copy
            regions:
              - {region: eu-west-1, kms_key: ` + kmsAlias + `}
              - {region: us-west-2, kms_key: ` + kmsAlias + `}
              - {region: ap-southeast-2, kms_key: ` + kmsAlias + `}
          - account: "333333333333"
            mode: share
            regions: [{region: us-east-1}, {region: eu-west-1}, {region: us-west-2}]
  - name: denied
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      distribute:
        retry_window: 10m
        targets:
          - {account: "222222222222", role: ` + distributeRole + `, mode: copy, regions: [{region: eu-west-1, kms_key: ` + kmsAlias + `}]}
          - account: "444444444444"
            role: ` + deniedRole + `
            mode: copy
            regions: [{region: eu-west-1, kms_key: ` + kmsAlias + `}, {region: us-west-2, kms_key: ` + kmsAlias + `}]
  - name: cancelcopy
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      distribute:
        targets:
          - {account: "555555555555", role: ` + cancelRole + `, mode: copy, regions: [{region: eu-central-1, kms_key: ` + kmsAlias + `}]}
  - name: testcancel
    repo: kiln-ami/app
    triggers: {manual: true}
    stages:
      bake: {template: ami.pkr.hcl, region: us-east-1, timeout: 5m, vars: {endpoint: {{.Endpoint}}}}
      test:
        timeout: 2m
        env: {` + stateEnv + `: {{.State}}}
        commands:
          - touch "$` + stateEnv + `/$KILN_AMI_ID.started"
          - sleep 300
`

func TestMain(m *testing.M) {
	flag.Parse() // motoserver asks testing.Verbose before m.Run would parse
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ami set-up:", err)
		code = 1
	}
	os.Exit(code)
}

// runSuite starts moto, the proxy, the Temporal server and the worker, runs
// the tests, and tears everything down in reverse.
func runSuite(m *testing.M) (code int, err error) {
	tb := &testkit.MainTB{}
	defer tb.Close()
	defer testkit.Recover(&err)
	root, err := os.MkdirTemp("", "kiln-ami-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	s := &suite{dataDir: filepath.Join(root, "data"), packerLog: filepath.Join(root, "packer-runs.log"),
		stateDir: filepath.Join(root, "state")}
	if err := os.MkdirAll(s.stateDir, 0o755); err != nil {
		return 0, err
	}
	s.secret, err = randomSecret()
	if err != nil {
		return 0, err
	}
	s.moto = motoserver.Start(tb)
	s.proxy = awsproxy.Start(tb, s.moto.URL)
	if err := setAWSEnv(s); err != nil {
		return 0, err
	}
	// ctx bounds the set-up only; nothing started here keeps it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.subnet, s.group, err = makeNetwork(ctx, s.moto.URL); err != nil {
		return 0, fmt.Errorf("moto network: %w", err)
	}
	if err := makeKeys(ctx, s.moto.URL); err != nil {
		return 0, fmt.Errorf("moto KMS keys: %w", err)
	}
	s.proxy.ShareAcrossAccounts()
	cfg, err := writeFixture(ctx, root, s)
	if err != nil {
		return 0, err
	}
	packerBin, err := writePackerWrapper(root, s.packerLog)
	if err != nil {
		return 0, err
	}

	tmp, err := testkit.StartTemporal(ctx)
	if err != nil {
		return 0, err
	}
	defer tmp.Close()
	c, log := tmp.Client, tmp.Log
	w := worker.New(c, worker.Options{
		Config: cfg, DataDir: s.dataDir, MaxConcurrentBuilds: 8, PackerBinary: packerBin,
		CopyPollInterval: 200 * time.Millisecond,
		Log:              log.Level(zerolog.WarnLevel),
	})
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()

	s.temporal, s.runs = c, &starter.Runs{Client: c}
	it = s
	return m.Run(), nil
}

// setAWSEnv points the worker's AWS SDK (which reads the environment on every
// activity) and Packer (which inherits it) at the proxy, with dummy
// credentials, and sets the secrets kiln.yaml names.
func setAWSEnv(s *suite) error {
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":          s.proxy.URL,
		"AWS_ACCESS_KEY_ID":         "testing",
		"AWS_SECRET_ACCESS_KEY":     "testing",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
		secretEnv:                   s.secret,
		stateEnv:                    s.stateDir,
		hookSecretEnv:               "unused-webhook-secret",
	} {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// writeFixture makes the test repository and parses kiln.yaml rendered with
// its path and the proxy's URL.
func writeFixture(ctx context.Context, root string, s *suite) (*config.Config, error) {
	repo := filepath.Join(root, "repos", "app")
	head, err := gitx.InitRepo(ctx, repo, os.DirFS(filepath.Join("testdata", "repo")), "initial commit")
	if err != nil {
		return nil, fmt.Errorf("test repository: %w", err)
	}
	s.head = head
	var buf bytes.Buffer
	// strconv.Quote yields a YAML double-quoted scalar for any path or URL.
	err = template.Must(template.New("kiln.yaml").Parse(kilnYAML)).Execute(&buf, map[string]string{
		"Repo": strconv.Quote(repo), "Endpoint": strconv.Quote(s.proxy.URL),
		"Subnet": s.subnet, "Group": s.group, "State": strconv.Quote(s.stateDir),
	})
	if err != nil {
		return nil, err
	}
	return config.Parse("kiln.yaml", buf.Bytes())
}

// writePackerWrapper writes the PackerBinary the worker runs: it records the
// run it bakes for, then becomes the real packer (exec keeps the process
// group kiln signals).
func writePackerWrapper(root, runsLog string) (string, error) {
	if _, err := os.Stat(realPacker); err != nil {
		return "", fmt.Errorf("packer not found at %s: apt-get install -y packer", realPacker)
	}
	path := filepath.Join(root, "bin", "packer")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$PKR_VAR_kiln_run_id\" >> " + strconv.Quote(runsLog) +
		"\nexec " + realPacker + " \"$@\"\n"
	return path, os.WriteFile(path, []byte(script), 0o755)
}

func randomSecret() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tok-" + hex.EncodeToString(b), nil
}
