package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/examples"
	"github.com/kiln-ci/kiln/internal/buildkit"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/internal/metrics"
	"github.com/kiln-ci/kiln/starter"
	"github.com/kiln-ci/kiln/worker"
	"github.com/kiln-ci/kiln/workflows"
)

// devOptions are `kiln dev`'s flags.
type devOptions struct {
	configPath   string
	dataDir      string
	listen       string
	temporalPort int
	uiPort       int
	buildkitAddr string
	maxBuilds    *positiveInt
	packer       *string
	// localAWS starts the local moto and registry with --config too;
	// without --config the example always has them.
	localAWS   bool
	localPorts localPorts
}

func runDev(ctx context.Context, env *Env, args []string) error {
	o := devOptions{}
	fs := newFlags(env, "dev", "[flags]")
	fs.StringVar(&o.configPath, "config", "", "kiln.yaml to run; default: the bundled example pipeline")
	fs.StringVar(&o.dataDir, "data-dir", ".kiln", "where Temporal's database, logs, artifacts and workspaces live")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address for webhooks (POST /hooks/github) and GET /healthz")
	fs.IntVar(&o.temporalPort, "temporal-port", 7233, "port of the embedded Temporal frontend")
	fs.IntVar(&o.uiPort, "ui-port", 8233, "port of the Temporal Web UI")
	fs.BoolVar(&o.localAWS, "local-aws", false, "with --config: start the example's local AWS (moto) and registry too, for a config copied from the rendered example")
	fs.IntVar(&o.localPorts.aws, "local-aws-port", defaultLocalPorts.aws, "port of the local AWS (moto_server)")
	fs.IntVar(&o.localPorts.registry, "local-registry-port", defaultLocalPorts.registry, "port of the local OCI registry")
	fs.StringVar(&o.buildkitAddr, "buildkit-address", envOr("KILN_BUILDKIT_ADDRESS", ""), "buildkitd for container builds; default: start one under the data dir when root with runc (env KILN_BUILDKIT_ADDRESS)")
	var err error
	o.packer = packerFlag(fs)
	if o.maxBuilds, err = maxBuildsFlag(fs); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	return o.run(ctx, env)
}

// run starts, in order, the HTTP listener (so /healthz can say what is still
// starting), Temporal, the UI, the worker and the starter, then serves until ctx
// ends and stops them in reverse.
func (o *devOptions) run(ctx context.Context, env *Env) error {
	log := env.Log
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	cfgPath, fresh := o.configPath, false
	var local *localAWS
	if cfgPath == "" || o.localAWS {
		containers := o.buildkitAddr != "" || buildkit.Available() == nil
		if local, err = startLocalAWS(ctx, log, containers, o.localPorts); err != nil {
			return err
		}
		defer local.stop()
	}
	if cfgPath == "" {
		if cfgPath, fresh, err = prepareExample(ctx, filepath.Join(dataDir, "example"), local); err != nil {
			return fmt.Errorf("example pipeline: %w", err)
		}
	}
	cfg, secrets, err := loadWithSecrets(cfgPath, log)
	if err != nil {
		return err
	}

	m, err := metrics.New()
	if err != nil {
		return err
	}
	health := starter.NewHealth("temporal", "ui", "worker", "starter")
	hooks := newIntakes()
	srv, err := listenHTTP(o.listen, hooks.mux(health, m), log)
	if err != nil {
		return err
	}
	defer shutdownHTTP(srv)

	ts, err := devserver.Start(ctx, devserver.Options{
		DataDir:          filepath.Join(dataDir, "temporal"),
		FrontendPort:     o.temporalPort,
		UIPort:           o.uiPort,
		SearchAttributes: workflows.SearchAttributes(),
		Log:              log.Level(max(log.GetLevel(), zerolog.ErrorLevel)),
	})
	if err != nil {
		return err
	}
	defer ts.Stop()
	health.Ready("temporal")
	health.Ready("ui")

	c, err := client.Dial(client.Options{HostPort: ts.Address(), Namespace: ts.Namespace(), Logger: sdkLogger(log), MetricsHandler: m.SDK})
	if err != nil {
		return err
	}
	defer c.Close()
	var registries []string
	if local != nil {
		registries = append(registries, local.Registry)
	}
	store, err := artifactStore(ctx, cfg, filepath.Join(dataDir, "artifact-store"), log)
	if err != nil {
		return err
	}
	ctrs := startContainers(ctx, o.buildkitAddr, dataDir, insecureRegistries(cfg, registries...), log)
	defer ctrs.stop()
	wo := worker.Options{Config: cfg, DataDir: dataDir, MaxConcurrentBuilds: int(*o.maxBuilds), UIURL: ts.UIAddress(), Log: log,
		Containers: ctrs.client, NoContainers: ctrs.err, Artifacts: store,
		PackerBinary: *o.packer, PackerPlugins: packerPlugins(dataDir, log)}
	if err := buildUsers(&wo, log); err != nil {
		return err
	}
	w := worker.New(c, wo)
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer w.Stop()
	health.Ready("worker")
	logResuming(ctx, c, log)

	runs := &starter.Runs{Client: c, Log: log}
	if err := startStarter(ctx, c, cfg, log); err != nil {
		return err
	}
	hooks.install(cfg, secrets, runs, log)
	health.Ready("starter")

	log.Info().Str("temporal", ts.Address()).Str("ui", ts.UIAddress()).
		Str("webhooks", "http://"+srv.Addr+"/hooks/github").Str("config", cfgPath).Str("data_dir", dataDir).Msg("kiln dev is ready")
	if fresh {
		startExampleRun(ctx, runs, examples.Pipeline, ts.UIAddress(), log)
	}
	if local != nil && o.configPath != "" {
		log.Info().Str("aws", local.Endpoint).Str("registry", local.Registry).Msg("the local AWS and registry are up for your config")
	} else if local != nil && local.Endpoint != "" {
		// moto keeps nothing between starts, so the AMI example runs at each.
		log.Info().Str("aws", local.Endpoint).Str("registry", local.Registry).Msg("the AMI example runs against a local moto and registry")
		startExampleRun(ctx, runs, examples.AMIPipeline, ts.UIAddress(), log)
	}
	if o.configPath == "" && local != nil && local.BuildImage != "" && ctrs.client != nil {
		// The registry is in memory, so the container example runs at each start too.
		log.Info().Str("image", local.BuildImage).Msg("the container example builds in a busybox image and publishes a Dockerfile image")
		startExampleRun(ctx, runs, examples.ContainerPipeline, ts.UIAddress(), log)
	}
	<-ctx.Done()
	sayStopping(c, env.Stderr, "dev", dataDir)
	return nil
}

// startStarter reconciles schedules with config; the webhook handler is
// installed by the caller.
func startStarter(ctx context.Context, c client.Client, cfg *config.Config, log zerolog.Logger) error {
	changes, err := starter.ReconcileSchedules(ctx, c.ScheduleClient(), cfg)
	if err != nil {
		return fmt.Errorf("schedules: %w", err)
	}
	log.Info().Strs("created", changes.Created).Strs("updated", changes.Updated).
		Strs("deleted", changes.Deleted).Int("unchanged", len(changes.Unchanged)).Msg("schedules reconciled")
	return nil
}

func startExampleRun(ctx context.Context, runs *starter.Runs, pipeline, ui string, log zerolog.Logger) {
	id, err := runs.StartManual(ctx, pipeline, "main", "")
	if err != nil {
		log.Error().Err(err).Str("pipeline", pipeline).Msg("could not start the example run")
		return
	}
	log.Info().Str("workflow_id", id).Str("url", activities.RunURL(ui, "default", id)).Msg("started the example run")
}

type timeouts struct{ header, read, write, idle time.Duration }

// httpTimeouts bound every connection of kiln's HTTP endpoints, so a
// client that sends its body a byte at a time, or holds an idle
// connection, cannot keep it open: the whole request must arrive within
// read, the answer (which takes at most the 9 s start budget) go out
// within write. A var for tests.
var httpTimeouts = timeouts{
	header: 10 * time.Second, read: 30 * time.Second, write: 20 * time.Second, idle: 60 * time.Second,
}

func listenHTTP(addr string, h http.Handler, log zerolog.Logger) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	t := httpTimeouts
	srv := &http.Server{Addr: l.Addr().String(), Handler: h,
		ReadHeaderTimeout: t.header, ReadTimeout: t.read, WriteTimeout: t.write, IdleTimeout: t.idle}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http server stopped")
		}
	}()
	return srv, nil
}

func shutdownHTTP(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// loadWithSecrets loads a config for a process that receives webhooks: it
// refuses one whose repositories lack a usable webhook secret.
func loadWithSecrets(path string, log zerolog.Logger) (*config.Config, map[string][]byte, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("config", path).Msg(w)
	}
	secrets, err := cfg.WebhookSecrets()
	if err != nil {
		return nil, nil, err
	}
	return cfg, secrets, nil
}
