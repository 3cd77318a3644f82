// Package packer runs `packer build` for kiln's AMI bake stage: it validates
// the inputs, runs packer in its own process group, streams its
// machine-readable output as scrubbed human lines, and returns the AMIs the
// builders made. Packer's own manifest is not needed.
package packer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultKillGrace is how long a cancelled packer gets between SIGINT and
// SIGKILL: it must terminate its instance and delete the temporary key pair
// and security group, which takes several AWS calls.
const DefaultKillGrace = 2 * time.Minute

// Options describes one packer build.
type Options struct {
	// Dir is the working directory, normally the repository checkout.
	Dir string
	// Template is the path, relative to Dir, of a .pkr.hcl file, a directory
	// of them, or a legacy .json template. It must stay inside Dir.
	Template string
	// Vars become -var NAME=VALUE arguments, in name order.
	Vars map[string]string
	// VarFiles become -var-file arguments; paths are relative to Dir.
	VarFiles []string
	// SecretVars are variables whose values must not be on packer's command
	// line, which every local user can read in /proc/<pid>/cmdline: they are
	// written to a var file only the worker's user can read, passed last,
	// and removed when packer exits. Their values are scrubbed like Secrets.
	SecretVars map[string]string
	// Env is appended to os.Environ() (AWS credentials, PKR_VAR_kiln_*, KILN_*).
	Env []string
	// Secrets are values replaced by <sensitive> in everything kiln logs or
	// returns: -machine-readable prints even `sensitive` variables in clear.
	Secrets []string
	// Log receives one human-readable, scrubbed line per packer UI message.
	Log io.Writer
	// Progress, if set, is called on each UI line, e.g. to heartbeat.
	Progress func(Progress)
	// KillGrace is the time between SIGINT to packer's process group and
	// SIGKILL when ctx ends; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// Packer is the packer binary; empty means "packer" from PATH.
	Packer string
	// Manifest optionally names, relative to Dir, the file a manifest
	// post-processor in the template writes. When set, Result.RunUUID is the
	// manifest's last_run_uuid and that run's artifacts are added.
	Manifest string
}

// Progress is where a running build is, for heartbeats and UIs.
type Progress struct {
	// LastLine is the last UI line packer printed (scrubbed).
	LastLine string
	// Step is the last "==> " step line, without the arrow.
	Step string
}

// Artifact is one AMI a build produced.
type Artifact struct{ Region, AMI string }

// Result is what a successful build produced.
type Result struct {
	// Artifacts are the AMIs, one per region, sorted by region.
	Artifacts []Artifact
	// RunUUID is the manifest's last_run_uuid; empty without Options.Manifest.
	RunUUID string
}

// ErrInvalidOptions marks a build refused before packer ran; it is permanent.
var ErrInvalidOptions = errors.New("packer: invalid options")

// ErrStart marks a build whose packer could not be started (no binary, no
// pipes, no secret var file): a fault of the worker, not of the build, that
// another attempt, maybe on another worker, may not meet.
var ErrStart = errors.New("packer could not start")

// varName is what kiln accepts as a packer variable name.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Build runs packer build and returns the AMIs it made. A non-zero exit is a
// *BuildError; a cancelled ctx stops packer (SIGINT, KillGrace, SIGKILL) and
// returns an error wrapping ctx.Err().
func Build(ctx context.Context, o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prevRun := previousRunUUID(o)
	out, err := run(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Artifacts: out.artifacts()}
	if o.Manifest != "" {
		if err := addManifest(res, filepath.Join(o.Dir, o.Manifest), prevRun, out.scrub); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// validate refuses inputs that could leave the checkout or smuggle options.
func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if o.Dir == "" {
		return bad("no working directory")
	}
	if err := localExisting(o.Dir, o.Template, "template"); err != nil {
		return bad("%v", err)
	}
	for _, f := range o.VarFiles {
		if err := localExisting(o.Dir, f, "var file"); err != nil {
			return bad("%v", err)
		}
	}
	if o.Manifest != "" && !filepath.IsLocal(o.Manifest) {
		return bad("manifest %q leaves the repository", o.Manifest)
	}
	for _, vars := range []map[string]string{o.Vars, o.SecretVars} {
		for name := range vars {
			if !varName.MatchString(name) {
				return bad("variable name %q is not valid", name)
			}
		}
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return bad("environment entry %q is not NAME=VALUE", firstWord(kv))
		}
	}
	return nil
}

// localExisting checks that rel names an existing path inside dir.
func localExisting(dir, rel, what string) error {
	if rel == "" || !filepath.IsLocal(rel) {
		return fmt.Errorf("%s %q is not a path inside the repository", what, rel)
	}
	if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
		return fmt.Errorf("%s %s is not in the repository", what, rel)
	}
	return nil
}

// firstWord keeps a malformed env entry out of error messages beyond its
// start: it may be a credential.
func firstWord(s string) string {
	if len(s) > 8 {
		return s[:8] + "…"
	}
	return s
}

// writeSecretVars writes SecretVars to a new var file readable by this user
// only, and returns its path and how to remove it; with none it returns "".
// The file is JSON, which both HCL2 (as .pkrvars.json) and legacy JSON
// templates read.
func (o *Options) writeSecretVars() (string, func(), error) {
	if len(o.SecretVars) == 0 {
		return "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "kiln-packer-")
	if err != nil {
		return "", nil, fmt.Errorf("%w: secret var file: %w", ErrStart, err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	body, err := json.Marshal(o.SecretVars)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "secrets.pkrvars.json"), body, 0o600)
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%w: secret var file: %w", ErrStart, err)
	}
	return filepath.Join(dir, "secrets.pkrvars.json"), cleanup, nil
}

// args is packer's argv after the binary. Values are separate elements, so no
// shell ever parses them. secretFile, when not empty, is the last var file.
func (o *Options) args(secretFile string) []string {
	a := []string{"build", "-machine-readable", "-color=false"}
	names := make([]string, 0, len(o.Vars))
	for n := range o.Vars {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a = append(a, "-var", n+"="+o.Vars[n])
	}
	for _, f := range o.VarFiles {
		a = append(a, "-var-file", f)
	}
	if secretFile != "" {
		a = append(a, "-var-file", secretFile)
	}
	// "./" keeps a template named like a flag from being read as one.
	return append(a, "./"+filepath.ToSlash(filepath.Clean(o.Template)))
}

// env is packer's environment. CHECKPOINT_DISABLE stops packer phoning
// HashiCorp for version checks from build workers.
func (o *Options) env() []string {
	env := append(os.Environ(), "CHECKPOINT_DISABLE=1")
	return append(env, o.Env...)
}
