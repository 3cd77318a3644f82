package devserver

import (
	"net"
	"strconv"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

// Host is where a single-host Temporal server's four services listen: one
// IP, a gRPC port each, and the frontend's HTTP port.
type Host struct {
	IP                                                string
	Frontend, FrontendHTTP, History, Matching, Worker int
}

// Address is the frontend's host:port.
func (h Host) Address() string { return net.JoinHostPort(h.IP, strconv.Itoa(h.Frontend)) }

// SingleHost sets what a server on one host needs besides persistence:
// membership, the cluster's metadata (clusterID stays fixed, so a restarted
// server finds the metadata it wrote), the services' ports, no archival,
// and the public client. kiln dev uses it, and so do the cluster tests'
// server on PostgreSQL.
func SingleHost(conf *config.Config, h Host, clusterID string) {
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = h.IP
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             h.Address(),
			HTTPAddress:            net.JoinHostPort(h.IP, strconv.Itoa(h.FrontendHTTP)),
			ClusterID:              clusterID,
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	svc := func(port, httpPort int) config.Service {
		var s config.Service
		s.RPC.GRPCPort, s.RPC.BindOnIP, s.RPC.HTTPPort = port, h.IP, httpPort
		return s
	}
	conf.Services = map[string]config.Service{
		"frontend": svc(h.Frontend, h.FrontendHTTP),
		"history":  svc(h.History, 0),
		"matching": svc(h.Matching, 0),
		"worker":   svc(h.Worker, 0),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = h.Address()
}

// ServerOptions run conf's four services on its host with static
// membership (no ringpop: the ports never move, so a restarted process is
// the same host) and no authorization.
func ServerOptions(conf *config.Config, logger log.Logger, dc dynamicconfig.Client) []temporal.ServerOption {
	host := func(svc primitives.ServiceName) static.Hosts {
		s := conf.Services[string(svc)]
		return static.SingleLocalHost(net.JoinHostPort(s.RPC.BindOnIP, strconv.Itoa(s.RPC.GRPCPort)))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: host(primitives.FrontendService),
			primitives.HistoryService:  host(primitives.HistoryService),
			primitives.MatchingService: host(primitives.MatchingService),
			primitives.WorkerService:   host(primitives.WorkerService),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dc),
	}
}
