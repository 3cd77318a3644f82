package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildEnvironmentAndSecrets: a build image and declared secrets of
// every source load as written.
func TestBuildEnvironmentAndSecrets(t *testing.T) {
	cfg, err := Parse("kiln.yaml", []byte(head+`pipelines:
  - name: ci
    repo: acme/widget
    triggers: {manual: true}
    stages:
      build:
        buildspec: b.yml
        environment:
          image: registry.example.com/ci/go:1.26
          auth: {username: ci, password: {env: REGISTRY_PASSWORD}}
          insecure: true
        secrets:
          API_TOKEN: {env: WIDGET_API_TOKEN}
          DEPLOY_KEY: {file: /run/secrets/deploy}
          DB_PASSWORD: {secrets_manager: "prod/db:password:AWSCURRENT"}
          NPM_TOKEN: {parameter_store: /ci/npm-token}
      bake: {template: ami.pkr.hcl, region: us-east-1}
      test:
        commands: [inspec exec test]
        secrets: {SSH_KEY: {secrets_manager: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/ssh-AbCdEf"}}
`))
	require.NoError(t, err)
	b := cfg.Pipelines[0].Stages.Build
	require.NotNil(t, b.Environment)
	assert.Equal(t, "registry.example.com/ci/go:1.26", b.Environment.Image)
	assert.True(t, b.Environment.Insecure)
	assert.Equal(t, SecretRef{Env: "REGISTRY_PASSWORD"}, b.Environment.Auth.Password)
	assert.Equal(t, map[string]DeclaredSecret{
		"API_TOKEN":   {Env: "WIDGET_API_TOKEN"},
		"DEPLOY_KEY":  {File: "/run/secrets/deploy"},
		"DB_PASSWORD": {SecretsManager: "prod/db:password:AWSCURRENT"},
		"NPM_TOKEN":   {ParameterStore: "/ci/npm-token"},
	}, b.Secrets)
	assert.Equal(t, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/ssh-AbCdEf",
		cfg.Pipelines[0].Stages.Test.Secrets["SSH_KEY"].SecretsManager)
}

// TestSecretProblems: each declared secret has exactly one source and a
// shell name, a reference that does not parse is refused at load, and every
// problem names its file, line and field.
func TestSecretProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []problem
	}{
		{"shape", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {manual: true}
    stages:
      build:
        buildspec: b.yml
        environment: {insecure: true, pull: always}
        secrets:
          TWO: {env: A, file: /run/a}
          NONE: {}
          1BAD: {env: A}
          TYPO: {secret_manager: db}
`, []problem{
			{12, "pipelines[0].stages.build.environment", "missing required field image"},
			{12, "pipelines[0].stages.build.environment.pull", `unknown field "pull"; known fields: auth, image, insecure`},
			{14, "pipelines[0].stages.build.secrets.TWO", "give only one of env, file, parameter_store or secrets_manager"},
			{15, "pipelines[0].stages.build.secrets.NONE", "needs exactly one of env, file, parameter_store or secrets_manager"},
			{16, "pipelines[0].stages.build.secrets.1BAD", `"1BAD" is not a valid environment variable name`},
			{17, "pipelines[0].stages.build.secrets.TYPO.secret_manager", `unknown field "secret_manager"`},
		}},
		{"references", head + `pipelines:
  - name: ci
    repo: acme/widget
    triggers: {manual: true}
    stages:
      build:
        buildspec: b.yml
        environment: {image: "Registry.Example.com/CI:latest"}
        secrets:
          GOOD: {secrets_manager: "prod/db:password"}
          PARTS: {secrets_manager: "prod/db:password:AWSCURRENT:0123456789abcdef0123456789abcdef:extra"}
          NAME: {secrets_manager: "prod db"}
          ARN: {parameter_store: "arn:aws:s3:::bucket/key"}
          KILN_TOKEN: {env: TOKEN}
      bake: {template: ami.pkr.hcl, region: us-east-1}
      test:
        commands: [inspec exec test]
        secrets:
          SPACE: {parameter_store: "/ci/npm token"}
`, []problem{
			{12, "pipelines[0].stages.build.environment.image", `"Registry.Example.com/CI:latest" is not an image reference`},
			{15, "pipelines[0].stages.build.secrets.PARTS.secrets_manager", "there are 4 parts after the secret, at most 3 are allowed"},
			{16, "pipelines[0].stages.build.secrets.NAME.secrets_manager", `"prod db": the secret name is empty or has characters other than letters, digits and /_+=.@-`},
			{17, "pipelines[0].stages.build.secrets.ARN.parameter_store", "the ARN is not an SSM parameter ARN"},
			{18, "pipelines[0].stages.build.secrets.KILN_TOKEN", "KILN_* names are kiln's own variables"},
			{23, "pipelines[0].stages.test.secrets.SPACE.parameter_store", "the parameter name contains whitespace"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireProblems(t, tt.src, tt.want...) })
	}
}
