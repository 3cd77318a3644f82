package devserver

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/config"
)

// hold binds a free port for the test's length and returns it.
func hold(t *testing.T) int {
	t.Helper()
	ports, err := FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[0]))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return ports[0]
}

func TestStartNamesTakenFrontendAndUIPorts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(taken, free int) Options
		what string
	}{
		{"frontend", func(taken, free int) Options { return Options{FrontendPort: taken, UIPort: free} }, "the Temporal frontend"},
		{"ui", func(taken, free int) Options { return Options{FrontendPort: free, UIPort: taken} }, "the Temporal Web UI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			taken := hold(t)
			free, err := FreePorts("127.0.0.1", 1, taken)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Start(ctx, tc.opts(taken, free[0]))
			if s != nil {
				s.Stop()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "port "+strconv.Itoa(taken)+" for "+tc.what+" is not free")
		})
	}
}

// TestStartReturnsServerPanicAsError takes a port the server chose for one
// of its own services after it chose it. Temporal logs a fatal message and
// then panics on the nil listener: building the frontend's HTTP server, or
// serving history's gRPC in a goroutine of its own. Start must return an
// error naming the port instead.
func TestStartReturnsServerPanicAsError(t *testing.T) {
	for _, tc := range []struct {
		name string
		port func(*config.Config) int
	}{
		{"history grpc", func(c *config.Config) int { return c.Services["history"].RPC.GRPCPort }},
		{"frontend http", func(c *config.Config) int { return c.Services["frontend"].RPC.HTTPPort }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports, err := FreePorts("127.0.0.1", 1)
			require.NoError(t, err)
			o := Options{FrontendPort: ports[0]}
			o.defaults()
			conf, err := o.serverConfig()
			require.NoError(t, err)
			taken := tc.port(conf)
			l, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(taken)))
			require.NoError(t, err)
			defer l.Close()
			srv, err := startServer(&o, conf)
			if srv != nil {
				srv.Stop()
			}
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), strconv.Itoa(taken))
			assert.Contains(t, err.Error(), "address already in use")
		})
	}
}

// TestFreePortsExcludes asks for four ports out of six, two of them
// excluded: only the other four can come back. This is the race that made
// two services share a port: a port the caller chose and released looks free.
func TestFreePortsExcludes(t *testing.T) {
	low := minPort + 1000 + int(time.Now().UnixNano()%20000)
	exclude := []int{low + 1, low + 4}
	ports, err := freePortsIn("127.0.0.1", 4, low, low+6, exclude)
	if err != nil {
		t.Skipf("the range [%d, %d) is in use here: %v", low, low+6, err)
	}
	slices.Sort(ports)
	assert.Equal(t, []int{low, low + 2, low + 3, low + 5}, ports)
}
