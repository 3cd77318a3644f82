package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/metrics"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/worker"
)

// runWorker runs a kiln worker against an external Temporal cluster.
func runWorker(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var cfgPath, dataDir string
	var copies int
	var poll time.Duration
	var uiURL, buildkitAddr string
	fs := newFlags(env, "worker", "--config FILE [flags]")
	fs.StringVar(&cfgPath, "config", envOr("KILN_CONFIG", "kiln.yaml"), "kiln.yaml (env KILN_CONFIG)")
	fs.StringVar(&dataDir, "data-dir", envOr("KILN_DATA_DIR", ".kiln"), "logs, artifacts and workspaces (env KILN_DATA_DIR)")
	builds, err := maxBuildsFlag(fs)
	if err != nil {
		return err
	}
	fs.IntVar(&copies, "max-concurrent-copies", 100, "AMI copies and shares this worker runs at once")
	fs.StringVar(&uiURL, "ui-url", envOr("KILN_UI_URL", ""), "the Temporal Web UI's base URL, for links to runs in reports (env KILN_UI_URL)")
	fs.DurationVar(&poll, "copy-poll-interval", activities.DefaultCopyPollInterval, "how often a pending AMI copy's state is read")
	fs.StringVar(&buildkitAddr, "buildkit-address", envOr("KILN_BUILDKIT_ADDRESS", ""), "buildkitd to run container builds on; default: start one under the data dir when root with runc (env KILN_BUILDKIT_ADDRESS)")
	packer := packerFlag(fs)
	var metricsAddr string
	fs.StringVar(&metricsAddr, "metrics-listen", envOr("KILN_METRICS_LISTEN", ""), "address to serve GET /metrics (Prometheus) on; default: none (env KILN_METRICS_LISTEN)")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	m, err := metrics.New()
	if err != nil {
		return err
	}
	t.metrics = m.SDK
	if metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		srv, err := listenHTTP(metricsAddr, mux, env.Log)
		if err != nil {
			return err
		}
		defer shutdownHTTP(srv)
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	store, err := artifactStore(ctx, cfg, "", env.Log)
	if err != nil {
		return err
	}
	ctrs := startContainers(ctx, buildkitAddr, dataDir, insecureRegistries(cfg), env.Log)
	defer ctrs.stop()
	wo := worker.Options{Config: cfg, DataDir: dataDir, MaxConcurrentBuilds: int(*builds),
		MaxConcurrentCopies: copies, CopyPollInterval: poll, UIURL: uiURL, Log: env.Log,
		Containers: ctrs.client, NoContainers: ctrs.err, Artifacts: store,
		PackerBinary: *packer, PackerPlugins: packerPlugins(dataDir, env.Log)}
	if err := buildUsers(&wo, env.Log); err != nil {
		return err
	}
	w := worker.New(c, wo)
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer w.Stop()
	env.Log.Info().Str("temporal", t.address).Str("namespace", t.namespace).Msg("kiln worker is polling")
	logResuming(ctx, c, env.Log)
	<-ctx.Done()
	sayStopping(c, env.Stderr, "worker", "")
	return nil
}

// runServe runs the webhook receiver and reconciles schedules against an
// external Temporal cluster.
func runServe(ctx context.Context, env *Env, args []string) error {
	var t temporalFlags
	var cfgPath, listen string
	fs := newFlags(env, "serve", "--config FILE [flags]")
	fs.StringVar(&cfgPath, "config", envOr("KILN_CONFIG", "kiln.yaml"), "kiln.yaml (env KILN_CONFIG)")
	fs.StringVar(&listen, "listen", envOr("KILN_LISTEN", "127.0.0.1:8080"), "address for webhooks and /healthz (env KILN_LISTEN)")
	t.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, secrets, err := loadWithSecrets(cfgPath, env.Log)
	if err != nil {
		return err
	}
	m, err := metrics.New()
	if err != nil {
		return err
	}
	health := starter.NewHealth("starter")
	hooks := newIntakes()
	srv, err := listenHTTP(listen, hooks.mux(health, m), env.Log)
	if err != nil {
		return err
	}
	defer shutdownHTTP(srv)
	t.metrics = m.SDK
	c, err := t.dial(env.Log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := startStarter(ctx, c, cfg, env.Log); err != nil {
		return err
	}
	runs := &starter.Runs{Client: c, Log: env.Log}
	hooks.install(cfg, secrets, runs, env.Log)
	health.Ready("starter")
	env.Log.Info().Str("listen", srv.Addr).Str("temporal", t.address).Msg("kiln serve is ready")
	<-ctx.Done()
	return nil
}

// runValidate checks a kiln.yaml and prints every problem with file, line and field.
func runValidate(_ context.Context, env *Env, args []string) error {
	fs := newFlags(env, "validate", "FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2, err: fmt.Errorf("expected one FILE, got %d arguments", fs.NArg())}
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(env.Stdout, err)
		return &exitError{code: 1, err: fmt.Errorf("%s is invalid", fs.Arg(0))}
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(env.Stdout, "%s: warning: %s\n", fs.Arg(0), w)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d repos, %d pipelines)\n", fs.Arg(0), len(cfg.Repos), len(cfg.Pipelines))
	return nil
}
