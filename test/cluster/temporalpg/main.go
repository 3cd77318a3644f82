// Command temporalpg runs the Temporal server kiln embeds (the same
// go.temporal.io/server) as a process of its own, persisted to PostgreSQL
// (postgres12) for both its store and its visibility, so test/cluster can
// SIGKILL it and start it again on the same database and ports.
//
// On start it creates both databases and their schemas as temporal-sql-tool
// does (create-database, setup-schema -v 0.0, update-schema to the newest
// embedded version), which is a no-op on a database set up before; then it
// starts all four services on one host, registers the namespace, adds the
// search attributes it is given (kiln's), and prints "temporalpg: ready" on
// stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kiln-ci/kiln/internal/devserver"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/temporal"
)

// options are the process's flags.
type options struct {
	// postgres is the database server's host:port; user logs in to it
	// without a password (the test's cluster trusts loopback).
	postgres, user string
	// database and visibility name the two databases.
	database, visibility string
	// ip is the address every service binds.
	ip string
	// The services' gRPC ports, and the frontend's HTTP port.
	frontend, frontendHTTP, history, matching, worker int
	// namespace is registered with the Keyword search attributes attrs
	// (kiln's, which the test passes from workflows.SearchAttributes).
	namespace string
	attrs     stringList
	// logLevel is the server's, on stderr.
	logLevel string
}

func main() {
	o := parseFlags()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "temporalpg:", err)
		os.Exit(1)
	}
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.postgres, "postgres", "127.0.0.1:5432", "PostgreSQL host:port")
	flag.StringVar(&o.user, "user", "temporal", "PostgreSQL user")
	flag.StringVar(&o.database, "database", "temporal", "the store's database")
	flag.StringVar(&o.visibility, "visibility-database", "temporal_visibility", "the visibility database")
	flag.StringVar(&o.ip, "ip", "127.0.0.1", "address the services bind")
	flag.IntVar(&o.frontend, "frontend-port", 7233, "frontend gRPC port")
	flag.IntVar(&o.frontendHTTP, "frontend-http-port", 7243, "frontend HTTP port")
	flag.IntVar(&o.history, "history-port", 7234, "history gRPC port")
	flag.IntVar(&o.matching, "matching-port", 7235, "matching gRPC port")
	flag.IntVar(&o.worker, "worker-port", 7239, "worker service gRPC port")
	flag.StringVar(&o.namespace, "namespace", "default", "namespace to register")
	flag.Var(&o.attrs, "search-attribute", "a Keyword search attribute the namespace must have (repeatable)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "server log level")
	flag.Parse()
	return o
}

// run sets up the databases, starts the server, readies the namespace and
// serves until SIGTERM or SIGINT.
func run(o options) error {
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.logLevel, Format: "console"}))
	for _, db := range []struct{ name, schema string }{
		{o.database, storeSchema},
		{o.visibility, visibilitySchema},
	} {
		if err := setupSchema(o.sqlConfig(db.name), db.schema, logger); err != nil {
			return fmt.Errorf("database %s: %w", db.name, err)
		}
	}
	srv, err := temporal.NewServer(o.serverOptions(logger)...)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer srv.Stop()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := readyNamespace(setupCtx, o.frontendAddress(), o.namespace, o.attrs); err != nil {
		return err
	}
	fmt.Printf("temporalpg: ready on %s, namespace %s\n", o.frontendAddress(), o.namespace)
	<-ctx.Done()
	return nil
}

func (o options) frontendAddress() string {
	return net.JoinHostPort(o.ip, strconv.Itoa(o.frontend))
}

// sqlConfig is the postgres12 store of the named database.
func (o options) sqlConfig(database string) *config.SQL {
	return &config.SQL{
		PluginName:      pluginName,
		DatabaseName:    database,
		ConnectAddr:     o.postgres,
		ConnectProtocol: "tcp",
		User:            o.user,
		// Small pools: one database server serves every service here.
		MaxConns:          20,
		MaxIdleConns:      20,
		MaxConnLifetime:   time.Hour,
		ConnectAttributes: map[string]string{"sslmode": "disable"},
	}
}

// serverOptions put all four services on o.ip, as kiln dev's embedded
// server does, with the store and visibility on PostgreSQL.
func (o options) serverOptions(logger log.Logger) []temporal.ServerOption {
	return devserver.ServerOptions(o.serverConfig(), logger, dynamicConfig())
}

// clusterID stays fixed, so a restarted process finds the cluster
// metadata it wrote in the database.
const clusterID = "6b696c6e-636c-7573-7465-720000000001"

func (o options) serverConfig() *config.Config {
	conf := &config.Config{}
	conf.Persistence.DefaultStore = "postgres"
	conf.Persistence.VisibilityStore = "postgres-visibility"
	conf.Persistence.NumHistoryShards = 4
	conf.Persistence.DataStores = map[string]config.DataStore{
		"postgres":            {SQL: o.sqlConfig(o.database)},
		"postgres-visibility": {SQL: o.sqlConfig(o.visibility)},
	}
	devserver.SingleHost(conf, devserver.Host{IP: o.ip, Frontend: o.frontend, FrontendHTTP: o.frontendHTTP,
		History: o.history, Matching: o.matching, Worker: o.worker}, clusterID)
	return conf
}

// dynamicConfig tunes the server as internal/devserver tunes kiln dev's
// (its queue readers' rate limits lifted) and as deploy/temporal's
// dynamic config does kiln's production one (long workflow IDs). The
// namespace cache refreshes every second, so a namespace registered at
// start is served at once.
func dynamicConfig() dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		dynamicconfig.NamespaceCacheRefreshInterval.Key():                time.Second,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 200,
		dynamicconfig.MaxIDLengthLimit.Key():                             1000,
	}
	for _, k := range []string{
		"history.transferProcessorMaxPollRPS",
		"history.timerProcessorMaxPollRPS",
		"history.visibilityProcessorMaxPollRPS",
		"history.outboundProcessorMaxPollRPS",
	} {
		dc[dynamicconfig.MakeKey(k)] = 1000
	}
	return dc
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
