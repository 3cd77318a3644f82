// Package moto runs a private moto_server, a local imitation of AWS, for
// kiln's tests and for the example pipeline `kiln dev` runs without an AWS
// account.
package moto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ErrNotInstalled: moto_server is not on PATH (pip install 'moto[server]').
var ErrNotInstalled = errors.New("moto_server not found: pip install 'moto[server]'")

// startTimeout bounds how long moto_server may take to answer its first
// request; it imports a large Python tree, which is slow on a shared machine.
const startTimeout = 20 * time.Second

// Server is a running moto_server.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	cmd *exec.Cmd
}

// Start runs moto_server on a free loopback port and waits until it answers.
// Its output goes to out (nil discards it). Stop ends it.
func Start(ctx context.Context, out io.Writer) (*Server, error) {
	return StartOn(ctx, out, 0)
}

// StartOn runs moto_server on the loopback port given, or on a free one
// for 0.
func StartOn(ctx context.Context, out io.Writer, port int) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// Pdeathsig: a kiln that was killed takes its moto with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	if err := s.waitReady(ctx, startTimeout); err != nil {
		s.Stop()
		return nil, fmt.Errorf("moto_server on port %d: %w", port, err)
	}
	return s, nil
}

// Stop kills the process group: moto_server may fork workers (werkzeug's
// reloader), and a stray one would keep the port and memory. The process is
// reaped by the goroutine waitReady started.
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// Reset drops all state moto holds (resources, accounts).
func (s *Server) Reset() error {
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Env is the environment a process needs to talk to this server with dummy
// credentials and no instance metadata lookups.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// waitReady polls the moto API index until it answers or the process dies.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	exited := make(chan struct{})
	go func() { _, _ = s.cmd.Process.Wait(); close(exited) }()
	client := &http.Client{Timeout: time.Second}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case <-exited:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("no answer within %s", timeout)
		default:
		}
		if resp, err := client.Get(s.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort asks the kernel for an unused TCP port. Another process could take
// it before moto binds it; that race is rare enough here.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
