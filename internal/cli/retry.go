package cli

import (
	"context"
	"fmt"

	"github.com/kiln-ci/kiln/starter"
)

// runRetry retries the failed distribution targets of a run that waits for
// it, and with --wait follows the run to its end.
func runRetry(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var wait, asJSON bool
	fs := newFlags(env, "retry", "RUN_ID [--wait [--json]]")
	fs.BoolVar(&wait, "wait", false, "follow the run's stages and exit non-zero if it fails")
	fs.BoolVar(&asJSON, "json", false, "with --wait, print how the run ended and what it made as JSON on stdout")
	t.register(fs)
	arg, err := parseOneID(fs, args)
	if err != nil {
		return err
	}
	c, id, err := openRun(ctx, env, &t, arg)
	if err != nil {
		return err
	}
	defer c.Close()
	res, err := (&starter.Runs{Client: c}).Retry(ctx, id)
	if err != nil {
		return explainEnded(ctx, c, id, "retry", err)
	}
	for _, target := range res.Targets {
		fmt.Fprintf(env.Stdout, "retrying %s\n", target)
	}
	if !wait {
		return nil
	}
	return follow(ctx, c, id, env, asJSON)
}
