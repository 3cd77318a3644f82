package cluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/test/testkit"
	"github.com/kiln-ci/kiln/workflows"
)

// namespace is where the cluster's runs live: not "default", so every kiln
// process is seen to take --namespace.
const namespace = "kiln-cluster"

// temporalReady is what temporalpg prints once it serves the namespace.
const temporalReady = "temporalpg: ready"

// temporalServer is one temporalpg process on databases of its own in the
// package's PostgreSQL, on ports it keeps across restarts.
type temporalServer struct {
	args []string
	// address is the frontend's host:port.
	address string
	logDir  string
	// starts counts the processes started, for their log names.
	starts int
	proc   *process
}

// dbSeq makes each server's database names unique in the shared cluster.
var dbSeq atomic.Int32

// startTemporal starts a server on fresh databases and stops it when the
// test ends. Its logs are in logDir.
func startTemporal(t testing.TB, logDir string) *temporalServer {
	t.Helper()
	ports, err := devserver.FreePorts("127.0.0.1", 5)
	require.NoError(t, err)
	n := dbSeq.Add(1)
	s := &temporalServer{address: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), logDir: logDir}
	s.args = []string{
		"-postgres", pg.addr, "-user", pgUser,
		"-database", fmt.Sprintf("temporal_%d", n), "-visibility-database", fmt.Sprintf("temporal_visibility_%d", n),
		"-frontend-port", strconv.Itoa(ports[0]), "-frontend-http-port", strconv.Itoa(ports[1]),
		"-history-port", strconv.Itoa(ports[2]), "-matching-port", strconv.Itoa(ports[3]),
		"-worker-port", strconv.Itoa(ports[4]), "-namespace", namespace,
	}
	for _, name := range slices.Sorted(maps.Keys(workflows.SearchAttributes())) {
		s.args = append(s.args, "-search-attribute", name)
	}
	require.NoError(t, s.start())
	t.Cleanup(func() {
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("temporal server log (last lines):\n%s", lastLines(s.proc.output(), 30))
		}
	})
	return s
}

// start runs a new server process and waits until it is ready: schema,
// namespace and search attributes in place.
func (s *temporalServer) start() error {
	s.starts++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("temporal-%d.log", s.starts))
	p, err := startProcess("temporal server", logPath, nil, temporalBin, s.args...)
	if err != nil {
		return err
	}
	s.proc = p
	return p.waitOutput(temporalReady, 2*time.Minute)
}

// kill SIGKILLs the server process.
func (s *temporalServer) kill() error { return s.proc.kill() }

// client dials the server's namespace; the test closes it when it ends.
func (s *temporalServer) client(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.address, Namespace: namespace, Logger: testkit.QuietSDKLog()})
	require.NoError(t, err, "dial temporal at %s", s.address)
	t.Cleanup(c.Close)
	return c
}

// workerPID is the process ID in an SDK worker's default identity,
// "<pid>@<host>@<queue>"; 0 when it has none.
func workerPID(identity string) int {
	pid, err := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	if err != nil {
		return 0
	}
	return pid
}

// waitFor calls fn every so often until it reports true (waitFor too) or
// ctx ends (false).
func waitFor(ctx context.Context, every time.Duration, fn func() bool) bool {
	for {
		if fn() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(every):
		}
	}
}
