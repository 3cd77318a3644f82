// Package motoserver runs a private moto_server for a test, so AWS adapters
// can be exercised against a real (if simplified) AWS API without an account.
package motoserver

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long moto_server may take to answer its first
// request; it imports a large Python tree, which is slow on a shared machine.
const startTimeout = 20 * time.Second

// Server is a running moto_server owned by one test.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	cmd *exec.Cmd
}

// Start runs moto_server on a free local port, waits until it answers and
// stops it (with its whole process group) when the test ends. A missing
// moto_server fails the test instead of skipping it: CI must not pass by
// silently testing nothing.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal("moto_server not found: pip install 'moto[server]'")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if !testing.Verbose() {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(s.stop)
	if err := s.waitReady(startTimeout); err != nil {
		t.Fatalf("moto_server on port %d: %v", port, err)
	}
	return s
}

// Reset drops all state moto holds (resources, accounts), so the next test
// starts from moto's defaults without paying for a new process.
func (s *Server) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}

// Env is the environment a process (or the SDK, via t.Setenv) needs to talk
// to this server with dummy credentials and no instance metadata lookups.
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
func (s *Server) waitReady(timeout time.Duration) error {
	exited := make(chan struct{})
	go func() { s.cmd.Process.Wait(); close(exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited before answering")
		default:
		}
		resp, err := client.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %s", timeout)
}

// stop kills the process group: moto_server may fork workers (werkzeug
// reloader), and a stray one would keep the port and memory.
func (s *Server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// freePort asks the kernel for an unused TCP port. Another process could take
// it before moto binds it; that race is rare enough for tests.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
