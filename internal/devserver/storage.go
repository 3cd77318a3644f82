package devserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// tunedQueues lifts the rate limit on the history service's queue readers.
// Each reader may load tasks at most MaxPollRPS times a second (default 20):
// once its burst is spent, every transfer task, which is what hands a new
// workflow task to matching, waits up to 50 ms for a token. A CI run is a chain
// of such tasks, and on one host nothing needs the protection. Measured in
// test/bench (BenchmarkRoundTrip): start-to-completion of a one-task workflow
// goes from 50 ms to single-digit milliseconds.
var tunedQueues = map[string]any{
	"history.transferProcessorMaxPollRPS":   1000,
	"history.timerProcessorMaxPollRPS":      1000,
	"history.visibilityProcessorMaxPollRPS": 1000,
	"history.outboundProcessorMaxPollRPS":   1000,
}

// sqlConfig describes the SQLite store and, on first use of a data dir, creates
// its schema and namespace. WAL with synchronous=NORMAL survives a process
// crash (SIGKILL) without losing committed transactions, which is what the
// restart guarantee of `kiln dev` rests on.
func (o *Options) sqlConfig() (*config.SQL, error) {
	path, err := o.dbPath()
	if err != nil {
		return nil, err
	}
	conf := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if path == "" {
		conf.ConnectAttributes["mode"], conf.ConnectAttributes["cache"] = "memory", "shared"
		conf.DatabaseName = "kiln-" + strconv.Itoa(rand.IntN(1<<30))
	} else {
		conf.ConnectAttributes["mode"] = "rwc"
		conf.ConnectAttributes["journal_mode"] = "wal"
		conf.ConnectAttributes["synchronous"] = "normal"
		conf.DatabaseName = path
		if _, err := os.Stat(path); os.IsNotExist(err) {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("embedded temporal: create schema in %s: %w", path, err)
			}
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("embedded temporal: namespace %s: %w", o.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("embedded temporal: create namespace %s: %w", o.Namespace, err)
	}
	return conf, nil
}

// FreePorts returns n distinct TCP ports free on ip right now, none of them
// in exclude, chosen below the kernel's ephemeral range. A port found free is
// released before the server binds it; if it came from the ephemeral range,
// any outgoing connection (and a busy test run makes many) could take it in
// between. Below that range only another explicit bind can, and each
// candidate is checked by binding it. The ports are held until all n are
// chosen, so none is returned twice; exclude names the ports the caller has
// already chosen and released, which would otherwise look free.
func FreePorts(ip string, n int, exclude ...int) ([]int, error) {
	return freePortsIn(ip, n, minPort, ephemeralLow(), exclude)
}

// freePortsIn is FreePorts over the ports [low, high).
func freePortsIn(ip string, n, low, high int, exclude []int) ([]int, error) {
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("%w on %s in [%d, %d): found %d of %d", errNoPorts, ip, low, high, len(ports), n)
		}
		port := low + rand.IntN(high-low)
		if slices.Contains(exclude, port) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		defer l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// minPort is the lowest port FreePorts picks: clear of well-known services.
const minPort = 10000

// ephemeralLow is the start of the kernel's ephemeral port range, or Linux's
// default when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > minPort+1000 {
				return n
			}
		}
	}
	return 32768
}
