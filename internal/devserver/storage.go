package devserver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"

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

// FreePorts returns n distinct TCP ports free on ip right now. Ports are held
// open until all n are chosen so that the same port is not returned twice.
func FreePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("%w on %s: %v", errNoPorts, ip, err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
