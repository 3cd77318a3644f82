package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strings"

	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/workflows"
)

// runApprove lets a run waiting at an approval gate go on.
func runApprove(ctx context.Context, env *Env, args []string) error {
	return decide(ctx, env, "approve", args)
}

// runReject ends a run waiting at an approval gate, as not approved.
func runReject(ctx context.Context, env *Env, args []string) error {
	return decide(ctx, env, "reject", args)
}

func decide(ctx context.Context, env *Env, verb string, args []string) error {
	var t temporalFlags
	var d workflows.Decision
	usage := "RUN_ID [--by NAME]"
	if verb == "reject" {
		usage = "RUN_ID --reason TEXT [--by NAME]"
	}
	fs := newFlags(env, verb, usage)
	fs.StringVar(&d.By, "by", currentUser(), "who decides, as recorded in the run; default: your login")
	fs.StringVar(&d.Reason, "reason", "", "why (required to reject)")
	t.register(fs)
	arg, err := parseOneID(fs, args)
	if err != nil {
		return err
	}
	if verb == "reject" && strings.TrimSpace(d.Reason) == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("say why with --reason")}
	}
	d.Via = workflows.ViaCLI
	c, id, err := openRun(ctx, env, &t, arg)
	if err != nil {
		return err
	}
	defer c.Close()
	runs := &starter.Runs{Client: c}
	decideFn := runs.Approve
	if verb == "reject" {
		decideFn = runs.Reject
	}
	res, err := decideFn(ctx, id, d)
	if err != nil {
		return explainEnded(ctx, c, id, verb, err)
	}
	if verb == "reject" {
		fmt.Fprintf(env.Stdout, "rejected the %s stage of %s: it ends as not approved\n", res.Stage, id)
	} else {
		fmt.Fprintf(env.Stdout, "approved the %s stage of %s\n", res.Stage, id)
	}
	return nil
}

// parseOneID parses fs's flags around exactly one run ID, which flags may
// follow, as in `kiln approve RUN_ID --by ada`.
func parseOneID(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	var id string
	if fs.NArg() > 0 {
		id = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if id == "" || fs.NArg() != 0 {
		fs.Usage()
		return "", &exitError{code: 2, err: errors.New("name exactly one run ID (see kiln runs)")}
	}
	return id, nil
}

// currentUser is the login running kiln, the default approver's name.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
