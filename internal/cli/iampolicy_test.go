package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const iamPolicyConfig = `repos:
  - {name: acme/images, clone_url: https://github.com/acme/images.git, webhook_secret: {env: W}}
pipelines:
  - name: base-ami
    repo: acme/images
    triggers: {branch: [main]}
    stages:
      bake: {template: base.pkr.hcl, region: us-east-1}
      distribute:
        targets:
          - account: "222222222222"
            role: arn:aws:iam::222222222222:role/kiln-copy
            mode: copy
            regions: [{region: eu-west-1, kms_key: 1234abcd-12ab-34cd-56ef-1234567890ab}]
          - account: "333333333333"
            mode: share
            regions: [{region: us-east-1}]
  - name: app
    repo: acme/images
    triggers: {branch: [main]}
    stages: {build: {buildspec: buildspec.yml}}
`

func writeConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln.yaml")
	require.NoError(t, os.WriteFile(path, []byte(iamPolicyConfig), 0o600))
	return path
}

func TestIAMPolicy(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"iam-policy", "--config", writeConfig(t), "--pipeline", "base-ami",
		"--builder-arn", "arn:aws:iam::111111111111:role/kiln-builder"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())

	var out struct {
		Builder struct{ Version string }
		Targets map[string]struct {
			Trust struct {
				Statement []struct{ Principal struct{ AWS string } }
			}
		}
		SharedWith struct{ Accounts map[string][]string } `json:"shared_with"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out), stdout.String())
	assert.Equal(t, "2012-10-17", out.Builder.Version)
	require.Contains(t, out.Targets, "222222222222")
	assert.Equal(t, "arn:aws:iam::111111111111:role/kiln-builder", out.Targets["222222222222"].Trust.Statement[0].Principal.AWS)
	assert.Equal(t, map[string][]string{"333333333333": {"us-east-1"}}, out.SharedWith.Accounts)
	assert.Contains(t, stdout.String(), "\n  \"builder\": {", "pretty-printed")
}

func TestIAMPolicyErrors(t *testing.T) {
	path := writeConfig(t)
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"unknown pipeline": {[]string{"--config", path, "--pipeline", "nope"}, 1,
			`no pipeline "nope"; known pipelines: app, base-ami`},
		"no AWS stages":    {[]string{"--config", path, "--pipeline", "app"}, 1, "makes no AWS calls"},
		"missing pipeline": {[]string{"--config", path}, 2, "--pipeline is required"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tc.code, Main(append([]string{"iam-policy"}, tc.args...), &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String())
		})
	}
}
