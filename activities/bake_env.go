package activities

import (
	"maps"
	"os"
	"slices"

	"github.com/kiln-ci/kiln/internal/packer"
)

// packerOptions assembles Packer's inputs. kiln's values reach the template
// as PKR_VAR_kiln_* (an HCL2 template picks up the ones it declares and
// ignores the rest) and as KILN_* environment variables (for JSON templates'
// {{env}}). Secret variables are resolved here, on the worker, and reach
// Packer in a var file only the worker's user can read, never on its command
// line; Packer's output is scrubbed of them.
func (a *Activities) packerOptions(in BakeInput, src string) (packer.Options, error) {
	bake := in.Plan.Bake
	vars := map[string]string{}
	for k, v := range bake.Vars {
		vars[k] = v
	}
	var secrets []string
	secretVars := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(bake.SecretVars)) {
		v, err := bake.SecretVars[name].Resolve()
		if err != nil {
			return packer.Options{}, permanent(ErrInvalidBakeRequest, "stages.bake.secret_vars.%s: %v", name, err)
		}
		secretVars[name] = string(v)
	}
	for _, k := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		if v := os.Getenv(k); v != "" {
			secrets = append(secrets, v)
		}
	}
	env := []string{
		"PKR_VAR_kiln_commit=" + in.Plan.Commit,
		"PKR_VAR_kiln_ref=" + in.Event.Ref,
		"PKR_VAR_kiln_run_id=" + in.RunID,
		"PKR_VAR_kiln_pipeline=" + in.Pipeline,
		"CHECKPOINT_DISABLE=1", // no call home from Packer
	}
	if a.PackerPlugins != "" {
		env = append(env, "PACKER_PLUGIN_PATH="+a.PackerPlugins)
	}
	if pass := in.Event.AMI; pass != nil {
		// An AMI trigger's base, in the bake's region.
		env = append(env, "PKR_VAR_kiln_base_ami="+pass.In(bake.Region))
	}
	env = append(env, EventEnv(BuildInput{RunID: in.RunID, Pipeline: in.Pipeline, Event: in.Event, Plan: in.Plan})...)
	if bake.Region != "" {
		env = append(env, "AWS_REGION="+bake.Region, "AWS_DEFAULT_REGION="+bake.Region)
	}
	return packer.Options{
		Dir:        src,
		Template:   bake.Template,
		Vars:       vars,
		SecretVars: secretVars,
		VarFiles:   bake.VarFiles,
		Env:        env,
		Secrets:    secrets,
		Packer:     a.PackerBinary,
	}, nil
}
