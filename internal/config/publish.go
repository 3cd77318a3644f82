package config

import "time"

// PublishStage publishes what a run made, after every other stage: container
// images built from the build's artifacts, and CloudFormation templates
// carrying the distributed AMI map.
type PublishStage struct {
	// Images are pushed to OCI registries, each with tags from its rules.
	Images []ImagePublish `yaml:"images,omitempty" json:"images,omitempty"`
	// CloudFormation uploads templates with the AMI map injected.
	CloudFormation *CloudFormationPublish `yaml:"cloudformation,omitempty" json:"cloudformation,omitempty"`
	// Approval, when required, holds the run before the stage until an
	// approver lets it go on.
	Approval *Approval `yaml:"approval,omitempty" json:"approval,omitempty"`
}

// Approval is a gate before a stage: a durable wait for `kiln approve`
// by one of Approvers (anyone with kiln's CLI when none are listed), or
// `kiln reject`, for at most Timeout (default 72h), after which the run
// ends as not approved.
type Approval struct {
	Required  bool     `yaml:"required" json:"required"`
	Approvers []string `yaml:"approvers,omitempty" json:"approvers,omitempty"`
	Timeout   Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// gate is the stage's approval, or nil for no stage.
func (p *PublishStage) gate() *Approval {
	if p == nil {
		return nil
	}
	return p.Approval
}

// Gates says whether the approval holds its stage.
func (a *Approval) Gates() bool { return a != nil && a.Required }

// Wait is how long the gate waits.
func (a *Approval) Wait() time.Duration {
	if a.Timeout > 0 {
		return time.Duration(a.Timeout)
	}
	return DefaultApprovalTimeout
}

// ImagePublish is one container image: built from a Dockerfile with
// BuildKit, or, without a Docker engine or BuildKit, the build's artifacts as
// one layer on a base image.
type ImagePublish struct {
	// Name is the image repository without a tag, such as
	// "registry.example.com/acme/app". For an ECR repository
	// (<account>.dkr.ecr.<region>.amazonaws.com/<name>) kiln logs in with
	// ecr:GetAuthorizationToken. Other pipelines' image triggers name it.
	Name string `yaml:"name" json:"name"`
	// Base is the base image reference; default: an empty image (scratch).
	Base string `yaml:"base,omitempty" json:"base,omitempty"`
	// Files copies build artifacts into the image.
	Files []ImageFile `yaml:"files,omitempty" json:"files,omitempty"`
	// Dockerfile builds the image with BuildKit instead: the Dockerfile's
	// path in the repository. Files and Base then do not apply.
	Dockerfile string `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	// Context is the build context, a directory in the repository; default
	// the Dockerfile's directory. The build's artifacts are the named
	// context "artifacts" (COPY --from=artifacts).
	Context string `yaml:"context,omitempty" json:"context,omitempty"`
	// BuildArgs are the Dockerfile's ARG values.
	BuildArgs map[string]string `yaml:"build_args,omitempty" json:"build_args,omitempty"`
	// Target is the stage to build; default the last.
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
	// Secrets are what RUN --mount=type=secret,id=NAME reads, by id.
	Secrets map[string]DeclaredSecret `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	// Test runs commands inside the built image before any tag is pushed;
	// a failure pushes nothing.
	Test *ImageTest `yaml:"test,omitempty" json:"test,omitempty"`
	// Timeout bounds one attempt at building, testing and pushing the
	// image; default 30m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Env, Entrypoint, Cmd and WorkingDir set the image's config.
	Env        map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Entrypoint []string          `yaml:"entrypoint,omitempty" json:"entrypoint,omitempty"`
	Cmd        []string          `yaml:"cmd,omitempty" json:"cmd,omitempty"`
	WorkingDir string            `yaml:"working_dir,omitempty" json:"working_dir,omitempty"`
	// Tags overrides the default tag rules.
	Tags *TagRules `yaml:"tags,omitempty" json:"tags,omitempty"`
	// Auth is the registry's credentials; none for ECR or an open registry.
	Auth *RegistryAuth `yaml:"auth,omitempty" json:"auth,omitempty"`
	// Insecure talks plain HTTP to the registry, for a local one.
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
}

// ImageTest checks a freshly built image: its commands run in one shell in
// a container of the image, in its working directory.
type ImageTest struct {
	Commands []string `yaml:"commands" json:"commands"`
	// Timeout bounds the commands; default 10m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ImageFile copies the artifacts matching From (a glob relative to the
// build's artifacts, ** allowed) into the directory To in the image.
type ImageFile struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// TagRules say which tags an image gets. Each list holds templates with
// {branch}, {tag}, {pr}, {sha} and {short_sha}; an unset list keeps its
// default.
type TagRules struct {
	// DefaultBranch: pushes to the repository's default branch; default
	// ["{branch}", "latest"].
	DefaultBranch []string `yaml:"default_branch,omitempty" json:"default_branch,omitempty"`
	// Branch: pushes to other branches; default ["{branch}"].
	Branch []string `yaml:"branch,omitempty" json:"branch,omitempty"`
	// Tag: pushed tags; default ["{tag}"].
	Tag []string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// SemverMinor and SemverMajor also tag vX.Y.Z as X.Y and X. Those only
	// move forward: a backport older than the series' newest release in the
	// registry leaves them.
	SemverMinor bool `yaml:"semver_minor,omitempty" json:"semver_minor,omitempty"`
	SemverMajor bool `yaml:"semver_major,omitempty" json:"semver_major,omitempty"`
	// Review: pull-request runs; default ["pr-{pr}"].
	Review []string `yaml:"review,omitempty" json:"review,omitempty"`
	// ShortSHA also tags every image with the short commit SHA; default true.
	// Tags naming a commit, and a tag run's exact version, are write-once.
	ShortSHA *bool `yaml:"short_sha,omitempty" json:"short_sha,omitempty"`
}

// RegistryAuth is a registry's credentials: a username and password, or a
// bearer token. The secrets are read on the worker when the image is pushed.
type RegistryAuth struct {
	Username string    `yaml:"username,omitempty" json:"username,omitempty"`
	Password SecretRef `yaml:"password,omitempty" json:"password,omitempty"`
	Token    SecretRef `yaml:"token,omitempty" json:"token,omitempty"`
}

// CloudFormationPublish uploads CloudFormation templates from the repository
// to s3://<bucket>/<branch or tag>/<template path>, with the distributed AMI
// map injected as a region mapping.
type CloudFormationPublish struct {
	Bucket string `yaml:"bucket" json:"bucket"`
	// Region is the bucket's region; default the bake region.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Templates are paths in the repository, YAML or JSON.
	Templates []string `yaml:"templates" json:"templates"`
	// Account picks whose AMIs fill the map: a distribution target's
	// account; default the bake's own AMIs (Packer's, one per region it
	// built or copied to).
	Account string `yaml:"account,omitempty" json:"account,omitempty"`
	// Mapping names the mapping (default AMIRegionMap) and Key its per-region
	// key (default AMI): !FindInMap [AMIRegionMap, !Ref "AWS::Region", AMI].
	Mapping string `yaml:"mapping,omitempty" json:"mapping,omitempty"`
	Key     string `yaml:"key,omitempty" json:"key,omitempty"`
	// ParametersFile also uploads <template>.parameters.json with the AMI of
	// the bucket's region as parameter Key.
	ParametersFile bool `yaml:"parameters_file,omitempty" json:"parameters_file,omitempty"`
}

// Publish defaults.
const (
	DefaultMapping    = "AMIRegionMap"
	DefaultMappingKey = "AMI"
)
