package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/iampolicy"
)

// iamPolicyOptions are the flags of `kiln iam-policy`.
type iamPolicyOptions struct {
	configPath string
	pipeline   string
	builderARN string
}

// runIAMPolicy prints the least-privilege IAM policies a pipeline needs.
func runIAMPolicy(_ context.Context, env *Env, args []string) error {
	var o iamPolicyOptions
	fs := newFlags(env, "iam-policy", "--pipeline NAME [--config FILE] [--builder-arn ARN]")
	fs.StringVar(&o.configPath, "config", envOr("KILN_CONFIG", "kiln.yaml"), "kiln.yaml (env KILN_CONFIG)")
	fs.StringVar(&o.pipeline, "pipeline", "", "pipeline to write policies for (required)")
	fs.StringVar(&o.builderARN, "builder-arn", iampolicy.PlaceholderBuilderARN,
		"role or user the kiln worker runs as; target roles trust it (the default is a placeholder to replace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.pipeline == "" || fs.NArg() != 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--pipeline is required and no arguments are accepted")}
	}
	return o.run(env)
}

func (o iamPolicyOptions) run(env *Env) error {
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(cfg.Pipelines, func(p config.Pipeline) bool { return p.Name == o.pipeline })
	if i < 0 {
		names := make([]string, len(cfg.Pipelines))
		for j, p := range cfg.Pipelines {
			names[j] = p.Name
		}
		slices.Sort(names)
		return fmt.Errorf("%s has no pipeline %q; known pipelines: %s", o.configPath, o.pipeline, strings.Join(names, ", "))
	}
	pol, err := iampolicy.Generate(cfg.Pipelines[i], iampolicy.Options{BuilderARN: o.builderARN})
	if err != nil {
		return err
	}
	return pol.WriteJSON(env.Stdout)
}
