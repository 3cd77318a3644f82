package config

// BuildEnvironment is the image a build runs in, through BuildKit:
// CodeBuild's environment.image. Without one, the build runs on the
// worker.
type BuildEnvironment struct {
	// Image is the build image's reference. The plan pins it by digest, so
	// every attempt of a run builds in the same image.
	Image string `yaml:"image" json:"image"`
	// Auth is the image's registry credentials; none for ECR (kiln logs in
	// itself) or a public image.
	Auth *RegistryAuth `yaml:"auth,omitempty" json:"auth,omitempty"`
	// Insecure pulls over plain HTTP, for a local registry.
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
}

// DeclaredSecret says where one secret a stage declares is read, on the
// worker, when the stage runs: exactly one field is set. Its value reaches
// the stage as an environment variable (or a Dockerfile's secret mount), is
// scrubbed from logs, and never enters workflow history or an image layer.
type DeclaredSecret struct {
	// Env names an environment variable of the worker.
	Env string `yaml:"env,omitempty" json:"env,omitempty"`
	// File is a path on the worker; surrounding white space is trimmed.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// SecretsManager is a Secrets Manager reference, in CodeBuild's syntax:
	// secret-id[:json-key[:version-stage[:version-id]]].
	SecretsManager string `yaml:"secrets_manager,omitempty" json:"secrets_manager,omitempty"`
	// ParameterStore is a Parameter Store parameter's name or ARN.
	ParameterStore string `yaml:"parameter_store,omitempty" json:"parameter_store,omitempty"`
}

// Ref is the secret as a SecretRef, for the sources that need no AWS.
func (d DeclaredSecret) Ref() SecretRef { return SecretRef{Env: d.Env, File: d.File} }
