package notify_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/notify"
)

// failed is a typical failure notice, as the run workflow would build it.
func failed() notify.Message {
	return notify.Message{
		Pipeline: "app", Repo: "acme/app", Ref: "refs/heads/main",
		Commit: "0123abcdef0123abcdef0123abcdef0123abcdef", RunID: "run-42",
		URL:     "https://kiln.example.com/runs/run-42",
		Outcome: notify.OutcomeFailed, FailedStage: "test",
		Error:   "go test exited 1",
		LogTail: "--- FAIL: TestThing\n\x1b[31mFAIL\x1b[0m acme/app 0.1s\n",
		To:      []string{"Dev One <dev1@example.com>", "dev2@example.com"},
	}
}

// parse reads a captured DATA section as a mail and decodes its body.
func parse(t *testing.T, data string) (*mail.Message, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(data))
	require.NoError(t, err)
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	require.NoError(t, err)
	return msg, string(body)
}

func TestSMTPSendsMailWithAuth(t *testing.T) {
	srv := startSMTP(t, &smtpServer{Auth: true})
	s := notify.SMTP{Addr: srv.Addr, From: "kiln <ci@example.com>", Username: "ci", Password: "s3cret"}
	require.NoError(t, s.Send(context.Background(), failed()))

	require.Len(t, srv.Mails(), 1)
	got := srv.Mails()[0]
	assert.Equal(t, "ci@example.com", got.From)
	assert.Equal(t, []string{"dev1@example.com", "dev2@example.com"}, got.To)
	require.Len(t, srv.Auths(), 1)
	assert.Equal(t, "AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00ci\x00s3cret")), srv.Auths()[0])

	msg, body := parse(t, got.Data)
	assert.Equal(t, "[kiln] app main: failed at test (0123abc)", msg.Header.Get("Subject"))
	assert.Equal(t, `"kiln" <ci@example.com>`, msg.Header.Get("From"))
	assert.Equal(t, "<dev1@example.com>, <dev2@example.com>", msg.Header.Get("To"))
	assert.Equal(t, "text/plain; charset=utf-8", msg.Header.Get("Content-Type"))
	assert.Equal(t, "auto-generated", msg.Header.Get("Auto-Submitted"))
	_, err := msg.Header.Date()
	assert.NoError(t, err)
	for _, want := range []string{
		"Pipeline app failed at stage test.", "Repo:     acme/app", "Ref:      refs/heads/main",
		"Commit:   0123abcdef", "Link:     https://kiln.example.com/runs/run-42",
		"Error:    go test exited 1", "--- FAIL: TestThing\nFAIL acme/app 0.1s\n",
	} {
		assert.Contains(t, strings.ReplaceAll(body, "\r\n", "\n"), want)
	}
}

// A pusher controls ref names, pipeline names and committer emails; none of
// them may add a header or a recipient.
func TestSMTPHeaderInjectionIsDefused(t *testing.T) {
	srv := startSMTP(t, &smtpServer{})
	m := failed()
	m.Ref = "main\r\nBcc: evil@example.com"
	m.Pipeline = "app\nX-Injected: yes"
	m.FailedStage = "test\r\n\r\nfake body"
	m.To = []string{"dev1@example.com", "dev2@example.com\r\nBcc: evil@example.com", "evil@example.com\nX: y"}
	require.NoError(t, notify.SMTP{Addr: srv.Addr, From: "ci@example.com"}.Send(context.Background(), m))

	require.Len(t, srv.Mails(), 1)
	got := srv.Mails()[0]
	assert.Equal(t, []string{"dev1@example.com"}, got.To)
	msg, _ := parse(t, got.Data)
	keys := make([]string, 0, len(msg.Header))
	for k := range msg.Header {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"From", "To", "Subject", "Date", "Mime-Version",
		"Content-Type", "Content-Transfer-Encoding", "Auto-Submitted"}, keys)
	assert.Equal(t, "[kiln] app X-Injected: yes main Bcc: evil@example.com: failed at test fake body (0123abc)",
		msg.Header.Get("Subject"))
	assert.NotContains(t, got.Data, "\nBcc:")
	assert.NotContains(t, got.Data, "\nX-Injected:")
	assert.NotContains(t, got.Data, "\nfake body")
}

// Non-ASCII subjects go out RFC 2047-encoded and come back intact.
func TestSMTPEncodesUnicodeSubject(t *testing.T) {
	srv := startSMTP(t, &smtpServer{})
	m := failed()
	m.Pipeline = "déploiement"
	require.NoError(t, notify.SMTP{Addr: srv.Addr, From: "ci@example.com"}.Send(context.Background(), m))
	msg, _ := parse(t, srv.Mails()[0].Data)
	raw := msg.Header.Get("Subject")
	assert.True(t, strings.HasPrefix(raw, "=?utf-8?q?"), raw)
	decoded, err := new(mime.WordDecoder).DecodeHeader(raw)
	require.NoError(t, err)
	assert.Equal(t, "[kiln] déploiement main: failed at test (0123abc)", decoded)
}

// A server echoing what it was sent must not leak the password into the
// error, in clear or inside the base64 PLAIN blob.
func TestSMTPPasswordNeverInError(t *testing.T) {
	blob := base64.StdEncoding.EncodeToString([]byte("\x00ci\x00s3cret"))
	srv := startSMTP(t, &smtpServer{Auth: true, AuthReply: "535 5.7.8 rejected " + blob + " s3cret"})
	err := notify.SMTP{Addr: srv.Addr, From: "ci@example.com", Username: "ci", Password: "s3cret"}.
		Send(context.Background(), failed())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.NotContains(t, err.Error(), blob)
	assert.Contains(t, err.Error(), "[redacted]")
	assert.Empty(t, srv.Mails())
}

func TestSMTPRefusedRecipientStillSendsToOthers(t *testing.T) {
	srv := startSMTP(t, &smtpServer{Refuse: map[string]bool{"dev2@example.com": true}})
	err := notify.SMTP{Addr: srv.Addr, From: "ci@example.com"}.Send(context.Background(), failed())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused 1 of 2 recipients: dev2@example.com: 550")
	require.Len(t, srv.Mails(), 1)
	assert.Equal(t, []string{"dev1@example.com"}, srv.Mails()[0].To)
}

// The default mode upgrades when the server offers STARTTLS, and then
// authenticates over TLS; "starttls" refuses a server that does not offer it.
func TestSMTPStartTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler()) // only for its localhost certificate
	ts.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())

	srv := startSMTP(t, &smtpServer{Auth: true, TLS: &tls.Config{Certificates: ts.TLS.Certificates}})
	s := notify.SMTP{Addr: srv.Addr, From: "ci@example.com", Username: "ci", Password: "s3cret",
		TLSConfig: &tls.Config{RootCAs: roots}}
	require.NoError(t, s.Send(context.Background(), failed()))
	require.Len(t, srv.Mails(), 1)
	assert.True(t, srv.Mails()[0].TLS, "mail was not sent over TLS")

	plain := startSMTP(t, &smtpServer{})
	err := notify.SMTP{Addr: plain.Addr, From: "ci@example.com", TLS: notify.TLSStartTLS}.
		Send(context.Background(), failed())
	assert.ErrorContains(t, err, "does not offer STARTTLS")
	assert.Empty(t, plain.Mails())
}

func TestSMTPRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	err := notify.SMTP{Addr: unusedAddr(t), From: "not an address"}.Send(ctx, failed())
	assert.ErrorContains(t, err, "from address")
	err = notify.SMTP{Addr: unusedAddr(t), From: "ci@example.com", TLS: "ssl"}.Send(ctx, failed())
	assert.ErrorContains(t, err, `unknown TLS mode "ssl"`)
	m := failed()
	m.To = []string{"nobody"}
	err = notify.SMTP{Addr: unusedAddr(t), From: "ci@example.com"}.Send(ctx, m)
	assert.ErrorIs(t, err, notify.ErrNoRecipients)
}
