// Package devserver runs a complete Temporal server inside the kiln process:
// all four services on one host, persisted to a SQLite file, with the Temporal
// Web UI beside it. It serves `kiln dev` and kiln's integration tests alike.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
)

// Options configure an embedded server. Zero values get sensible defaults.
type Options struct {
	// DataDir holds the SQLite database (temporal.db); runs survive restarts
	// because of it. Empty means an in-memory database.
	DataDir string
	// IP is the address every service binds; default 127.0.0.1.
	IP string
	// FrontendPort is the gRPC port clients and workers dial; default 7233, 0 in
	// tests picks a free one with FreePort.
	FrontendPort int
	// UIPort serves the Temporal Web UI; 0 disables the UI.
	UIPort int
	// Namespace is created if missing; default "default".
	Namespace string
	// SearchAttributes are registered in the namespace (created or added).
	SearchAttributes map[string]enumspb.IndexedValueType
	// Log receives the server's own logs; the server is chatty, so it is best
	// given a logger at warn level.
	Log zerolog.Logger
	// DynamicConfig overrides tuned defaults, keyed by dynamic config key.
	DynamicConfig map[string]any
}

// Server is a running embedded Temporal server.
type Server struct {
	opts   Options
	server temporal.Server
	ui     *uiserver.Server
}

// Start builds, starts and readies the server: when it returns, the frontend
// answers and the search attributes exist.
func Start(ctx context.Context, o Options) (*Server, error) {
	o.defaults()
	if err := o.checkPorts(); err != nil {
		return nil, err
	}
	conf, err := o.serverConfig()
	if err != nil {
		return nil, err
	}
	srv, err := startServer(&o, conf)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, server: srv}
	if err := s.ensureSearchAttributes(ctx); err != nil {
		srv.Stop()
		return nil, err
	}
	if o.UIPort != 0 {
		if err := s.startUI(); err != nil {
			srv.Stop()
			return nil, err
		}
	}
	return s, nil
}

// checkPorts fails, naming the port, when the frontend's or the UI's port
// is taken: the server would panic on it rather than say so.
func (o *Options) checkPorts() error {
	for _, p := range []struct {
		what string
		port int
	}{{"the Temporal frontend", o.FrontendPort}, {"the Temporal Web UI", o.UIPort}} {
		if p.port == 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(p.port)))
		if err != nil {
			return fmt.Errorf("embedded temporal: port %d for %s is not free: %w", p.port, p.what, err)
		}
		l.Close()
	}
	return nil
}

// startServer builds and starts the server on conf's ports. Temporal does
// not return an error for a port it cannot bind (one another process took
// after it was chosen): it logs a fatal message and goes on, to panic on
// the nil listener, in the constructor or in the goroutine that serves it.
// The first is recovered; the second is prevented by not starting a server
// that logged a fatal message while it was built.
func startServer(o *Options, conf *config.Config) (srv temporal.Server, err error) {
	fatal := &fatalLog{}
	defer func() {
		if r := recover(); r != nil {
			if cause := fatal.Err(); cause != nil {
				r = cause
			}
			srv, err = nil, fmt.Errorf("embedded temporal: could not start on ports %s: %v", servicePorts(conf), r)
		}
	}()
	if srv, err = temporal.NewServer(o.serverOptions(conf, fatal)...); err != nil {
		return nil, fmt.Errorf("embedded temporal on ports %s: %w", servicePorts(conf), err)
	}
	if err := fatal.Err(); err != nil {
		return nil, fmt.Errorf("embedded temporal: could not start on ports %s: %w", servicePorts(conf), err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("embedded temporal: start on ports %s: %w", servicePorts(conf), err)
	}
	return srv, nil
}

// servicePorts lists each service's ports, as "frontend 7233 (http 7243), ...".
func servicePorts(conf *config.Config) string {
	names := slices.Sorted(maps.Keys(conf.Services))
	out := make([]string, 0, len(names))
	for _, name := range names {
		rpc := conf.Services[name].RPC
		s := fmt.Sprintf("%s %d", name, rpc.GRPCPort)
		if rpc.HTTPPort != 0 {
			s += fmt.Sprintf(" (http %d)", rpc.HTTPPort)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// Address is the frontend's host:port.
func (s *Server) Address() string {
	return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.FrontendPort))
}

// UIAddress is the Web UI's base URL, or "" when the UI is off.
func (s *Server) UIAddress() string {
	if s.ui == nil {
		return ""
	}
	return "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
}

// Namespace is the namespace the server was started with.
func (s *Server) Namespace() string { return s.opts.Namespace }

// Stop shuts down the UI and then the server.
func (s *Server) Stop() {
	if s.ui != nil {
		s.ui.Stop()
	}
	s.server.Stop()
}

func (o *Options) defaults() {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.FrontendPort == 0 {
		o.FrontendPort = 7233
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
}

func (o *Options) serverOptions(conf *config.Config, fatal *fatalLog) []temporal.ServerOption {
	return ServerOptions(conf, newTemporalLogger(o.Log, fatal), o.dynamicConfig())
}

// dynamicConfig tunes the single-host server for latency. The history queues
// otherwise poll on long intervals, which adds on the order of 100 ms to every
// workflow task; a CI engine's runs are short chains of tasks, so that adds up.
func (o *Options) dynamicConfig() dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 200,
	}
	for k, v := range tunedQueues {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range o.DynamicConfig {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

func (o *Options) serverConfig() (*config.Config, error) {
	sqlConf, err := o.sqlConfig()
	if err != nil {
		return nil, err
	}
	ports, err := FreePorts(o.IP, 4, o.FrontendPort, o.UIPort)
	if err != nil {
		return nil, err
	}
	conf := &config.Config{}
	conf.Persistence.DefaultStore = "sqlite"
	conf.Persistence.VisibilityStore = "sqlite"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlConf}}
	SingleHost(conf, Host{IP: o.IP, Frontend: o.FrontendPort, FrontendHTTP: ports[3], History: ports[0], Matching: ports[1],
		Worker: ports[2]}, devClusterID)
	return conf, nil
}

const clusterName = "active"

// devClusterID is fixed so a data dir keeps one cluster identity across restarts.
const devClusterID = "6b696c6e-6465-7600-0000-000000000001"

func (s *Server) startUI() error {
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                s.opts.IP,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.Address(),
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	errc := make(chan error, 1)
	go func() { errc <- s.ui.Start() }()
	// ui.Start blocks while serving, so readiness is a successful dial.
	addr := net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return fmt.Errorf("temporal web ui on %s: %w", addr, err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("temporal web ui on %s did not start within 15s", addr)
}

// ensureSearchAttributes adds any configured search attribute the namespace
// lacks. A namespace created by an older kiln gets the newer attributes too.
func (s *Server) ensureSearchAttributes(ctx context.Context) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.Address(), Namespace: s.opts.Namespace, Logger: quietSDKLogger{}})
	if err != nil {
		return fmt.Errorf("embedded temporal: dial %s: %w", s.Address(), err)
	}
	defer c.Close()
	op := c.OperatorService()
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.opts.Namespace})
	if err != nil {
		return fmt.Errorf("embedded temporal: list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range s.opts.SearchAttributes {
		if _, ok := have.CustomAttributes[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: s.opts.Namespace, SearchAttributes: missing})
	if err != nil {
		return fmt.Errorf("embedded temporal: add search attributes: %w", err)
	}
	return nil
}

// dbPath is where the SQLite file lives, or "" for memory.
func (o *Options) dbPath() (string, error) {
	if o.DataDir == "" {
		return "", nil
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	return filepath.Join(o.DataDir, "temporal.db"), nil
}

var errNoPorts = errors.New("no free ports")
