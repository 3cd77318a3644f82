// Package motoserver runs a private moto_server for a test, so AWS adapters
// can be exercised against a real (if simplified) AWS API without an account.
package motoserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
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

// Mail is one message moto's SES "sent".
type Mail struct {
	Source, Subject, Body string
	To                    []string
}

// SentMail lists the mail moto's SES has "sent", read from moto's data
// API, where moto 5 keeps it under ses.Message.
func SentMail(t testing.TB, s *Server) []Mail {
	t.Helper()
	resp, err := http.Get(s.URL + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto data: HTTP %d", resp.StatusCode)
	}
	var data struct {
		SES struct {
			Message []struct {
				Source, Subject, Body string
				Destinations          map[string][]string
			}
		} `json:"ses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
		t.Fatalf("moto data: %v", err)
	}
	out := make([]Mail, 0, len(data.SES.Message))
	for _, m := range data.SES.Message {
		out = append(out, Mail{Source: m.Source, Subject: m.Subject, Body: m.Body, To: m.Destinations["ToAddresses"]})
	}
	return out
}
