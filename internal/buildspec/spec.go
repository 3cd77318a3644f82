// Package buildspec reads AWS CodeBuild buildspec files (version 0.2) and runs
// them the way CodeBuild does, so a repository that builds on CodeBuild builds
// on kiln unchanged.
//
// Parse is strict, like a linter: a key kiln does not know or does not support
// is an error naming its file, line and field, rather than a silently ignored
// setting. Run executes every command of a build in one long-lived shell, as
// CodeBuild does for version 0.2, so variables, functions and the working
// directory carry over from one command and phase to the next.
package buildspec

// Phase names, in the order a build runs them. They are the buildspec keys and
// also name phases in Result, Progress and log lines.
const (
	PhaseInstall   = "install"
	PhasePreBuild  = "pre_build"
	PhaseBuild     = "build"
	PhasePostBuild = "post_build"
)

// Values of Phase.OnFailure.
const (
	// OnFailureAbort stops the build after the phase fails (CodeBuild's default).
	OnFailureAbort = "ABORT"
	// OnFailureContinue lets later phases run although this one failed; the
	// build still ends as failed.
	OnFailureContinue = "CONTINUE"
)

// Spec is a parsed buildspec. Parse fills it; Run executes it.
type Spec struct {
	// Version is always "0.2": Parse rejects the others, whose shell semantics differ.
	Version string
	// Env configures the build's environment.
	Env Env
	// Phases are the commands to run.
	Phases Phases
	// Artifacts says which files the build produces.
	Artifacts Artifacts
	// Cache names what the build would like kept for its next run. Run does
	// not act on it; keeping a cache is the caller's business.
	Cache Cache
	// Reports are the test reports to collect after the build, in file order.
	Reports []Report
	// Ignored lists the CodeBuild sections kiln accepts but does not act on,
	// each with the reason; Run writes them to the log.
	Ignored []string
}

// Env is the buildspec's env section.
type Env struct {
	// Shell is "bash" or "sh": the shell all commands run in. Unset means
	// bash, or sh in a build image that has no bash.
	Shell string
	// Variables are set before the first command. File order is kept so logs
	// and tests read the way the file does.
	Variables []Var
	// ExportedVariables name shell variables whose final values the build
	// hands on (Result.Exported), e.g. to later pipeline stages.
	ExportedVariables []string
	// GitCredentialHelper is recorded for the caller, which owns git
	// credentials; Run itself does not act on it.
	GitCredentialHelper bool
	// SecretsManager maps variables to AWS Secrets Manager references
	// (secret-id[:json-key[:version-stage[:version-id]]]), in file order.
	// Parse checks only their shape and Run does not set them: the caller
	// resolves them on the worker (internal/secrets), so a build definition
	// never holds a secret's value.
	SecretsManager []SecretVar
	// ParameterStore maps variables to AWS Systems Manager parameter names,
	// in file order; resolved by the worker like SecretsManager.
	ParameterStore []SecretVar
}

// SecretVar is one env.secrets-manager or env.parameter-store entry.
type SecretVar struct {
	// Name is the shell variable to set, a shell identifier like Var.Name.
	Name string
	// Ref says where the value is kept, as written in the buildspec.
	Ref string
}

// Var is one env.variables entry.
type Var struct {
	// Name is a shell identifier; Parse rejects other names because a shell
	// could not read them.
	Name string
	// Value is the literal value; it is never interpreted by a shell.
	Value string
}

// Phases holds the four build phases. A nil phase is absent from the file and
// does not appear in Result.
type Phases struct {
	Install, PreBuild, Build, PostBuild *Phase
}

// Phase is one phase of a build.
type Phase struct {
	// OnFailure is OnFailureAbort or OnFailureContinue; "" means abort.
	OnFailure string
	// Commands run in order; the phase stops at the first that fails.
	Commands []string
	// Finally run after Commands whether they succeeded or not, e.g. to clean
	// up or to upload test reports.
	Finally []string
}

// Artifacts is the buildspec's artifacts section.
type Artifacts struct {
	// Files are doublestar globs ("**" crosses directories) relative to BaseDirectory.
	Files []string
	// Name is the artifact's name, for the caller that uploads it.
	Name string
	// BaseDirectory is relative to the source directory; "" means the source
	// directory itself. Copied paths are relative to it.
	BaseDirectory string
	// DiscardPaths flattens copied files into the top of the artifacts directory.
	DiscardPaths bool
	// ExcludePaths are globs, relative to BaseDirectory, of files not to copy.
	ExcludePaths []string
}

// Cache is the buildspec's cache section.
type Cache struct {
	// Paths are as written: absolute, or relative to the source directory,
	// possibly ending in "/**/*" for a whole directory.
	Paths []string
}

// FormatJUnitXML is the only report file-format kiln reads, and the default.
const FormatJUnitXML = "JUNITXML"

// Report is one entry of the buildspec's reports section: a report group and
// the test result files that feed it.
type Report struct {
	// Name is the report group's name or ARN, the entry's key.
	Name string
	// Files are doublestar globs relative to BaseDirectory.
	Files []string
	// BaseDirectory is relative to the source directory; "" means the source
	// directory itself.
	BaseDirectory string
	// DiscardPaths is CodeBuild's flag for the uploaded files' paths; kiln
	// keeps it for callers that upload reports.
	DiscardPaths bool
	// FileFormat is FormatJUnitXML: Parse refuses the formats kiln cannot read.
	FileFormat string
}

// namedPhase pairs a phase with its name so Run can walk them in order.
type namedPhase struct {
	name  string
	phase *Phase
}

// ordered returns the phases present in the spec, in the order they run.
func (p Phases) ordered() []namedPhase {
	all := []namedPhase{
		{PhaseInstall, p.Install},
		{PhasePreBuild, p.PreBuild},
		{PhaseBuild, p.Build},
		{PhasePostBuild, p.PostBuild},
	}
	var out []namedPhase
	for _, np := range all {
		if np.phase != nil {
			out = append(out, np)
		}
	}
	return out
}
