package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing/fstest"
	"time"

	"github.com/kiln-ci/kiln/internal/devserver"
	"github.com/kiln-ci/kiln/internal/gitx"
)

// target is the kiln under load.
type target struct {
	url, secret, repo, pipeline string
	// temporal is the frontend to check runs at; empty skips the check.
	temporal string
	// commit is what the pushes name as their new head.
	commit string
}

// dev is a `kiln dev` the load command started.
type dev struct {
	target
	cmd  *exec.Cmd
	dir  string
	keep bool
	done chan struct{}
}

// loadYAML is the pipeline under load: a build that only echoes, so the
// worker's runs compete with the intake for the machine as real ones do,
// but a run costs little more than its workflow.
const loadYAML = `repos:
  - name: load/repo
    clone_url: %q
    webhook_secret: {file: %q}
pipelines:
  - name: load
    repo: load/repo
    triggers: {branch: [main]}
    stages:
      build:
        buildspec: {version: 0.2, phases: {build: {commands: ["echo built"]}}}
`

func startDev(ctx context.Context, o options) (*dev, error) {
	dir, err := os.MkdirTemp("", "kiln-load-")
	if err != nil {
		return nil, err
	}
	d := &dev{dir: dir, keep: o.keepData, done: make(chan struct{})}
	d.pipeline, d.repo, d.secret = "load", "load/repo", "load-secret"
	fail := func(err error) (*dev, error) {
		d.stop()
		return nil, err
	}
	bin := o.kiln
	if bin == "" {
		bin = filepath.Join(dir, "kiln")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kiln").CombinedOutput(); err != nil {
			return fail(fmt.Errorf("go build ./cmd/kiln (run from kiln's checkout, or pass -kiln): %v\n%s", err, out))
		}
	}
	repo := filepath.Join(dir, "repo")
	if d.commit, err = gitx.InitRepo(ctx, repo, fstest.MapFS{"README.md": {Data: []byte("# load\n")}}, "initial commit"); err != nil {
		return fail(err)
	}
	secretFile := filepath.Join(dir, "secret")
	cfg := filepath.Join(dir, "kiln.yaml")
	if err := os.WriteFile(secretFile, []byte(d.secret), 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(cfg, fmt.Appendf(nil, loadYAML, repo, secretFile), 0o644); err != nil {
		return fail(err)
	}
	ports, err := devserver.FreePorts("127.0.0.1", 3)
	if err != nil {
		return fail(err)
	}
	d.temporal = "127.0.0.1:" + strconv.Itoa(ports[0])
	listen := "127.0.0.1:" + strconv.Itoa(ports[2])
	d.url = "http://" + listen + "/hooks/github"
	log, err := os.Create(filepath.Join(dir, "dev.log"))
	if err != nil {
		return fail(err)
	}
	defer log.Close()
	d.cmd = exec.Command(bin, "dev", "--config", cfg, "--data-dir", filepath.Join(dir, "data"),
		"--temporal-port", strconv.Itoa(ports[0]), "--ui-port", strconv.Itoa(ports[1]), "--listen", listen,
		"--max-builds", strconv.Itoa(o.maxBuilds))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	if err := d.waitHealthy(ctx, 2*time.Minute); err != nil {
		return fail(fmt.Errorf("%w (log: %s)", err, log.Name()))
	}
	fmt.Printf("kiln dev is up: webhooks %s, temporal %s, data %s\n", d.url, d.temporal, dir)
	return d, nil
}

func (d *dev) waitHealthy(ctx context.Context, limit time.Duration) error {
	url := d.url[:len(d.url)-len("/hooks/github")] + "/healthz"
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("kiln dev exited: %s", d.cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("kiln dev was not healthy within %s", limit)
}

// stop ends kiln dev (SIGTERM, then SIGKILL after 20 s) and removes its
// data dir unless -keep.
func (d *dev) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	if d.keep {
		fmt.Printf("kept %s\n", d.dir)
		return
	}
	_ = os.RemoveAll(d.dir)
}
