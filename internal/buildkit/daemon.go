// Package buildkit is kiln's container runtime: it drives a BuildKit daemon
// (the engine behind `docker build`) through github.com/moby/buildkit/client
// to build Dockerfiles and to run buildspecs and test commands inside images.
//
// A worker either dials a buildkitd it is given (--buildkit-address), or,
// when it runs as root on a machine with runc, starts its own as a child
// under its data dir (StartDaemon).
package buildkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// ErrUnavailable says no container runtime can be had on this machine; its
// message says why, in one line an operator can act on.
var ErrUnavailable = errors.New("no container runtime")

// DaemonOptions say how to start a private buildkitd.
type DaemonOptions struct {
	// Root is the daemon's state: images, build cache, its socket and log.
	Root string
	// Binary is the buildkitd to run; empty means "buildkitd" from PATH.
	Binary string
	// InsecureRegistries are host:port registries reached over plain HTTP,
	// such as a loopback registry in tests or kiln dev.
	InsecureRegistries []string
	// StartTimeout bounds the wait for the daemon to answer; default 60s.
	StartTimeout time.Duration
}

// Daemon is a buildkitd kiln started. It dies with kiln: it is killed when
// the process that started it exits, however that happens.
type Daemon struct {
	// Address is the daemon's gRPC address (unix://...).
	Address string
	// LogPath is where the daemon's own output goes.
	LogPath string
	// Network says whether its containers are kept off the worker's
	// network.
	Network Network
	root    string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartDaemon starts buildkitd as a child and waits until it lists its
// workers. It returns an error wrapping ErrUnavailable when this machine
// cannot run one (not root, no runc, no buildkitd).
func StartDaemon(ctx context.Context, o DaemonOptions) (*Daemon, error) {
	bin, err := locate(o)
	if err != nil {
		return nil, err
	}
	// Only root may enter the root: the socket in it lets anyone who can
	// reach it build as root.
	if err := os.MkdirAll(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("buildkitd root: %w", err)
	}
	if err := os.Chmod(o.Root, 0o700); err != nil {
		return nil, fmt.Errorf("buildkitd root: %w", err)
	}
	net := chooseNetwork()
	if net.Isolated {
		if err := net.fence(); err != nil {
			return nil, fmt.Errorf("%w: fencing builds off the worker: %v", ErrUnavailable, err)
		}
	}
	cfg := filepath.Join(o.Root, "buildkitd.toml")
	if err := os.WriteFile(cfg, daemonConfig(o.InsecureRegistries, net), 0o600); err != nil {
		return nil, fmt.Errorf("buildkitd config: %w", err)
	}
	sock, err := socketPath(o.Root)
	if err != nil {
		return nil, err
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		// A daemon of a worker that was just killed may still hold the
		// root's lock while it shuts down, and still answer on the socket:
		// wait for it, or a new daemon would exit and the old one answer.
		d, err := (*Daemon)(nil), errLocked
		if !locked(o.Root) {
			// No daemon holds the root: what its last one left running is
			// orphaned. Best effort: runc's own error says enough if the
			// new daemon then fails.
			_ = killOrphans(o.Root)
			d, err = spawn(ctx, bin, o.Root, cfg, sock, time.Until(deadline))
		}
		if d != nil {
			d.Network = net
		}
		if errors.Is(err, errLocked) && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		return d, err
	}
}

// errLocked: another buildkitd holds the root.
var errLocked = errors.New("another buildkitd holds the root")

// locked reports whether a buildkitd holds root's lock (buildkitd.lock,
// which it flocks).
func locked(root string) bool {
	f, err := os.OpenFile(filepath.Join(root, "buildkitd.lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return false // buildkitd will say what is wrong
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// spawn starts one buildkitd and waits up to timeout for it to answer.
func spawn(ctx context.Context, bin, root, cfg, sock string, timeout time.Duration) (*Daemon, error) {
	d := &Daemon{Address: "unix://" + sock, LogPath: filepath.Join(root, "buildkitd.log"), root: root, exited: make(chan struct{})}
	logFile, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("buildkitd log: %w", err)
	}
	defer logFile.Close()
	start, _ := logFile.Seek(0, io.SeekEnd)
	d.cmd = exec.Command(bin, "--root", root, "--addr", d.Address, "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C meant for kiln reaches it only
	// through Stop; Pdeathsig, so it never outlives a kiln that was killed.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	err = d.waitReady(ctx, timeout)
	if err == nil {
		select {
		case <-d.exited: // the answer came from another daemon on the socket
			err = errors.New("exited although the socket answered")
		default:
			return d, nil
		}
	}
	d.Stop()
	if out, _ := os.ReadFile(d.LogPath); int64(len(out)) > start && bytes.Contains(out[start:], []byte("another instance running")) {
		return nil, errLocked
	}
	return nil, fmt.Errorf("buildkitd (log: %s): %w", d.LogPath, err)
}

// Available says whether StartDaemon can start a buildkitd here, without
// starting one: nil, or an error wrapping ErrUnavailable that says why.
func Available() error {
	_, err := locate(DaemonOptions{})
	return err
}

// locate finds the buildkitd binary and checks that this machine can run
// it: buildkitd needs root (or a rootless set-up kiln does not make) and runc.
func locate(o DaemonOptions) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%w: kiln starts buildkitd only as root; run one yourself and pass --buildkit-address", ErrUnavailable)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "", fmt.Errorf("%w: runc is not installed (apt-get install runc)", ErrUnavailable)
	}
	if o.Binary != "" {
		path, err := exec.LookPath(o.Binary)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrUnavailable, o.Binary, err)
		}
		return path, nil
	}
	if path, err := exec.LookPath("buildkitd"); err == nil {
		return path, nil
	}
	// Where kiln's test command builds it, at the client's version.
	if v := clientVersion(); v != "" {
		if home, err := os.UserHomeDir(); err == nil {
			path := filepath.Join(home, ".cache", "kiln-ci", "buildkit-"+v, "buildkitd")
			if _, err := os.Stat(path); err == nil {
				return path, nil
			}
		}
	}
	return "", fmt.Errorf("%w: buildkitd is not on PATH (./test/run builds it, or: go build -o /usr/local/bin/ github.com/moby/buildkit/cmd/buildkitd in kiln's checkout)", ErrUnavailable)
}

// clientVersion is the version of BuildKit's client kiln is built with: a
// daemon of the same version speaks exactly its protocol.
func clientVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/moby/buildkit" {
			return dep.Version
		}
	}
	return ""
}

// daemonConfig is buildkitd's TOML: the OCI worker on runc only, its
// network, and plain HTTP for the insecure registries.
func daemonConfig(insecure []string, net Network) []byte {
	var b strings.Builder
	b.WriteString("[worker.oci]\n  enabled = true\n" + net.config() + "[worker.containerd]\n  enabled = false\n")
	for _, host := range slices.Sorted(slices.Values(insecure)) {
		fmt.Fprintf(&b, "[registry.%q]\n  http = true\n", host)
	}
	return []byte(b.String())
}

// socketPath keeps the socket under root, which only root may enter:
// buildkitd makes its socket world-writable, and whoever can write it
// builds as root. A path too long for a unix socket (108 bytes) moves to
// a private directory in the temp dir, named by a hash of root so two data
// dirs never share one.
func socketPath(root string) (string, error) {
	p := filepath.Join(root, "buildkitd.sock")
	if len(p) < 100 {
		return p, nil
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "kiln-buildkitd-"+hex.EncodeToString(sum[:8]))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("buildkitd socket: %w", err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		return "", fmt.Errorf("buildkitd socket: %s is not a directory only root may enter", dir)
	}
	return filepath.Join(dir, "buildkitd.sock"), nil
}

// waitReady polls ListWorkers until the daemon answers with a worker, dies,
// or timeout passes.
func (d *Daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if err := Ping(ctx, d.Address); err == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("exited before answering: %s", d.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop asks the daemon to shut down (it stops its containers), then kills
// it if it has not within 10 seconds.
func (d *Daemon) Stop() {
	if d == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
	_ = ReleaseRoot(d.root)
}

// Ping dials address and asks for the daemon's workers: the check that a
// buildkitd is there and can build.
func Ping(ctx context.Context, address string) error {
	c, err := client.New(ctx, address)
	if err != nil {
		return err
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return errors.New("buildkitd has no workers")
	}
	return nil
}
