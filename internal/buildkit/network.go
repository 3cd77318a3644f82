package buildkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// bridgeName is the bridge kiln's buildkitd puts containers on, and
// bridgeSubnet its addresses (BuildKit's defaults).
const (
	bridgeName   = "buildkit0"
	bridgeSubnet = "10.10.0.0/16"
)

// cniDirs are where Debian's containernetworking-plugins and upstream's
// release put the CNI plugins.
var cniDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Network says how a daemon's containers reach the network.
type Network struct {
	// Isolated is true when each container has a network namespace of its
	// own on a bridge, NATed to the outside, and may reach neither the
	// worker itself nor the cloud's metadata service (169.254.169.254),
	// where the worker's own credentials are.
	Isolated bool
	// Why says why not, when it is not.
	Why string
	// cniDir holds the plugins, for the daemon's config.
	cniDir string
}

// chooseNetwork isolates builds when the CNI plugins and iptables are
// installed. Without them builds share the worker's network: they can then
// reach whatever listens on the worker, and its metadata service.
func chooseNetwork() Network {
	dir := ""
	for _, d := range cniDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			dir = d
			break
		}
	}
	if dir == "" {
		return Network{Why: "the CNI plugins are not installed (apt-get install containernetworking-plugins)"}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return Network{Why: "iptables is not installed (apt-get install iptables)"}
	}
	return Network{Isolated: true, cniDir: dir}
}

// config is the daemon's TOML for the network.
func (n Network) config() string {
	if !n.Isolated {
		return "  networkMode = \"host\"\n"
	}
	return fmt.Sprintf("  networkMode = \"bridge\"\n  cniBinaryPath = %q\n  bridgeName = %q\n  bridgeSubnet = %q\n",
		n.cniDir, bridgeName, bridgeSubnet)
}

// fenceRules keep containers on the bridge away from the worker: no
// packet from the bridge to the worker's own addresses (its services,
// on any interface), and none to the metadata service, whose credentials
// are the worker's.
var fenceRules = [][]string{
	{"INPUT", "-i", bridgeName, "-m", "comment", "--comment", "kiln: builds do not reach the worker", "-j", "DROP"},
	{"FORWARD", "-i", bridgeName, "-d", "169.254.169.254", "-m", "comment", "--comment", "kiln: builds do not reach instance metadata", "-j", "DROP"},
}

// fence adds fenceRules unless they are there already (another kiln on the
// machine, or an earlier start, added them).
func (n Network) fence() error {
	if !n.Isolated {
		return nil
	}
	var errs []error
	for _, rule := range fenceRules {
		chain, spec := rule[0], rule[1:]
		if exec.Command("iptables", append([]string{"-C", chain}, spec...)...).Run() == nil {
			continue
		}
		if out, err := exec.Command("iptables", append([]string{"-I", chain, "1"}, spec...)...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables -I %s %s: %v: %s", chain, strings.Join(spec, " "), err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// ReleaseRoot kills the containers a buildkitd that is gone left running,
// and unmounts what it left mounted under root: the network namespaces it
// kept ready (net/cni/*) and any snapshot a killed build still had. buildkitd releases them when it stops cleanly
// and at its next start; this is for a daemon that died with a killed
// kiln, before root is removed.
func ReleaseRoot(root string) error {
	orphans := killOrphans(root)
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return errors.Join(orphans, err)
	}
	root = filepath.Clean(root)
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		p := unescapeMountPath(f[4])
		if strings.HasPrefix(p, root+"/") {
			points = append(points, p)
		}
	}
	// Deepest first: a mount inside another goes before it.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(append(errs, orphans)...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+3 < len(p) {
			if n, err := strconv.ParseUint(p[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
