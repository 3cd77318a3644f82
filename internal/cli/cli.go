// Package cli implements kiln's commands. Each command has an options struct
// filled from flags and a run method, so tests drive commands directly.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// command is one kiln subcommand.
type command struct {
	summary string
	// run parses args and runs; it returns the process exit code's error.
	run func(ctx context.Context, env *Env, args []string) error
}

// Env is what commands write to.
type Env struct {
	Stdout, Stderr io.Writer
	Log            zerolog.Logger
}

var commands = map[string]command{
	"dev":        {"run everything in one process: embedded Temporal, Web UI, worker and webhook server", runDev},
	"worker":     {"run a worker against a Temporal cluster", runWorker},
	"serve":      {"run the webhook receiver and schedule reconciler against a Temporal cluster", runServe},
	"run":        {"start an on-demand pipeline run", runRun},
	"runs":       {"list recent runs", runRuns},
	"watch":      {"follow a run to its end, or show how it ended (kiln watch RUN_ID)", runWatch},
	"retry":      {"retry the failed distribution targets of a run that waits for it", runRetry},
	"approve":    {"let a run waiting for approval go on (kiln approve RUN_ID [--by NAME])", runApprove},
	"reject":     {"end a run waiting for approval as not approved (kiln reject RUN_ID --reason TEXT)", runReject},
	"validate":   {"check a kiln.yaml", runValidate},
	"iam-policy": {"print the least-privilege IAM policies a pipeline needs, as JSON", runIAMPolicy},
	"amis":       {"list a pipeline's AMIs in every account and region, walk an AMI's lineage, or prune old AMIs (kiln amis prune)", runAMIs},
}

// exitError carries a specific exit code, e.g. `kiln run --wait` of a failed run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Main runs kiln with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr, Log: newLogger(stderr)}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kiln: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, env, args[1:])
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "kiln %s: %s\n", args[0], plain(ee.err))
		return ee.code
	default:
		fmt.Fprintf(stderr, "kiln %s: %s\n", args[0], plain(err))
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "kiln: durable CI/CD for machine images and containers, on Temporal.\n\nUsage: kiln <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'kiln <command> -h' for a command's flags.")
}

func newLogger(w io.Writer) zerolog.Logger {
	level := zerolog.InfoLevel
	if l, err := zerolog.ParseLevel(os.Getenv("KILN_LOG_LEVEL")); err == nil && l != zerolog.NoLevel {
		level = l
	}
	// Milliseconds, so the order of a busy worker's lines shows; zerolog's
	// default field format has whole seconds only.
	zerolog.TimeFieldFormat = time.RFC3339Nano
	out := io.Writer(w)
	if os.Getenv("KILN_LOG_FORMAT") != "json" {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w),
			FormatFieldValue: oneLine, FormatErrFieldValue: oneLine}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newFlags makes a command's flag set, printing its usage to stderr.
func newFlags(env *Env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("kiln "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: kiln %s %s\n\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// envOr returns the environment variable's value, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// positiveInt is an int flag that must be at least 1.
type positiveInt int

func (n *positiveInt) String() string { return strconv.Itoa(int(*n)) }

func (n *positiveInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return fmt.Errorf("%q is not a whole number of at least 1", s)
	}
	*n = positiveInt(v)
	return nil
}

// maxBuildsFlag registers --max-builds, defaulting to $KILN_MAX_BUILDS or 4:
// how many builds, bakes and AMI tests the worker runs at once. Plans,
// reports and copies have slots of their own.
func maxBuildsFlag(fs *flag.FlagSet) (*positiveInt, error) {
	n := positiveInt(4)
	if v := os.Getenv("KILN_MAX_BUILDS"); v != "" {
		if err := n.Set(v); err != nil {
			return nil, fmt.Errorf("KILN_MAX_BUILDS: %w", err)
		}
	}
	fs.Var(&n, "max-builds", "builds, bakes and AMI tests run at once; plans, reports and copies have their own slots (env KILN_MAX_BUILDS)")
	return &n, nil
}

// oneLine shows a console field's first line and how many follow: a build
// failure's message carries the log's last lines, which escaped into one
// line are unreadable and are in the build's log file anyway. The JSON log
// (KILN_LOG_FORMAT=json) keeps them whole.
func oneLine(v any) string {
	var s string
	switch v := v.(type) {
	case []byte: // arrays, objects and bools arrive as their JSON
		s = string(v)
	default:
		s = fmt.Sprint(v) // a string with a newline arrives quoted
	}
	raw, err := strconv.Unquote(s)
	if err != nil || !strings.Contains(raw, "\n") {
		return s
	}
	first, rest, _ := strings.Cut(raw, "\n")
	return fmt.Sprintf("%s [+%d lines]", strconv.Quote(first), strings.Count(rest, "\n")+1)
}
