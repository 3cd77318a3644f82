// Package motoserver runs a private moto_server for a test, so AWS adapters
// can be exercised against a real (if simplified) AWS API without an account.
package motoserver

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/kiln-ci/kiln/internal/moto"
)

// Server is a running moto_server owned by one test.
type Server = moto.Server

// Start runs moto_server on a free local port, waits until it answers and
// stops it (with its whole process group) when the test ends. A missing
// moto_server fails the test instead of skipping it: CI must not pass by
// silently testing nothing. With -v, moto's request log goes to stderr.
func Start(t testing.TB) *Server {
	t.Helper()
	var out io.Writer
	if testing.Verbose() {
		out = os.Stderr
	}
	s, err := moto.Start(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
