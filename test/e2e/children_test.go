package e2e

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/test/testkit"
)

// TestDevChildrenDieWithIt: `kill -9` of kiln dev gives it no chance to
// stop what it started, so its moto_server and buildkitd must go by
// themselves (Pdeathsig), or each crashed kiln dev would leave a root
// daemon and a Python server behind.
func TestDevChildrenDieWithIt(t *testing.T) {
	t.Parallel()
	ports := freeDevPorts(t)
	dev := startKiln(t, cleanEnv(), ports.devArgs(t.TempDir())...)
	waitHealthy(t, dev, ports, 60*time.Second)
	kids := children(dev.cmd.Process.Pid)
	names := map[string]bool{}
	for _, pid := range kids {
		names[commName(pid)] = true
	}
	require.True(t, names["buildkitd"], "kiln dev started no buildkitd; children: %v", names)
	require.True(t, names["moto_server"] || names["python"] || names["python3"], "kiln dev started no moto_server; children: %v", names)

	require.NoError(t, dev.cmd.Process.Kill())
	<-dev.done
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range kids {
		for testkit.ProcessAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		assert.False(t, testkit.ProcessAlive(pid), "%s (pid %d) outlived kiln dev", commName(pid), pid)
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// commName is the process's command name, or its script's for an
// interpreter (moto_server is a Python script).
func commName(pid int) string {
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if strings.HasSuffix(arg, "moto_server") || strings.HasSuffix(arg, "buildkitd") {
			return arg[strings.LastIndexByte(arg, '/')+1:]
		}
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(comm))
}
