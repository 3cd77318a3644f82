package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/notify"
)

// senderFunc adapts a function to notify.Sender.
type senderFunc func(context.Context, notify.Message) error

func (f senderFunc) Send(ctx context.Context, m notify.Message) error { return f(ctx, m) }

// One sender failing (its SMTP server is down) neither stops the others nor
// fails Notify; the failure and the skipped recipient are in the Result.
func TestNotifySendsThroughEverySender(t *testing.T) {
	srv := startSMTP(t, &smtpServer{})
	var seen []notify.Message
	senders := map[string]notify.Sender{
		"a-smtp-down": notify.SMTP{Addr: unusedAddr(t), From: "ci@example.com", Username: "ci", Password: "s3cret", TLS: notify.TLSNone},
		"b-smtp":      notify.SMTP{Addr: srv.Addr, From: "ci@example.com"},
		"c-record":    senderFunc(func(_ context.Context, m notify.Message) error { seen = append(seen, m); return nil }),
		"d-unset":     nil,
	}
	m := failed()
	m.To = append(m.To, "dev1@example.com", "bad\r\nBcc: evil@example.com", "nobody")

	res := notify.Notify(context.Background(), m, senders)

	assert.Equal(t, []string{"b-smtp", "c-record"}, res.Sent)
	require.Contains(t, res.Failed, "a-smtp-down")
	assert.Contains(t, res.Failed["a-smtp-down"], "connection refused")
	assert.NotContains(t, res.Failed["a-smtp-down"], "s3cret")
	assert.Equal(t, "no sender configured", res.Failed["d-unset"])
	assert.Len(t, res.Failed, 2)
	assert.Equal(t, "line break in address", res.Rejected["bad\r\nBcc: evil@example.com"])
	assert.Contains(t, res.Rejected["nobody"], "not an email address")
	assert.False(t, res.OK())

	require.Len(t, srv.Mails(), 1)
	assert.Equal(t, []string{"dev1@example.com", "dev2@example.com"}, srv.Mails()[0].To)
	require.Len(t, seen, 1)
	assert.Equal(t, []string{"dev1@example.com", "dev2@example.com"}, seen[0].To, "senders get only valid, deduplicated recipients")
}

func TestNotifyCancelledContextIsRecorded(t *testing.T) {
	srv := startSMTP(t, &smtpServer{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := notify.Notify(ctx, failed(), map[string]notify.Sender{"smtp": notify.SMTP{Addr: srv.Addr, From: "ci@example.com"}})
	assert.Empty(t, res.Sent)
	assert.Contains(t, res.Failed["smtp"], "canceled")
	assert.Empty(t, srv.Mails())
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    notify.Message
		want string
	}{
		{"failed", failed(), "[kiln] app main: failed at test (0123abc)"},
		{"succeeded", notify.Message{Pipeline: "app", Ref: "refs/heads/dev", Commit: "abcdef1234", Outcome: notify.OutcomeSucceeded, FailedStage: "x"},
			"[kiln] app dev: succeeded (abcdef1)"},
		{"cancelled tag", notify.Message{Pipeline: "app", Ref: "refs/tags/v1.2.0", Outcome: notify.OutcomeCancelled},
			"[kiln] app v1.2.0: cancelled"},
		{"repo when no pipeline", notify.Message{Repo: "acme/app", Ref: "main", Outcome: notify.OutcomeFailed},
			"[kiln] acme/app main: failed"},
		{"control characters", notify.Message{Pipeline: "a\tb\x00c", Ref: "m\u2028\r\nain", Outcome: notify.OutcomeFailed},
			"[kiln] a b c m ain: failed"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, notify.Subject(tc.m)) })
	}
}

func TestBody(t *testing.T) {
	m := failed()
	m.Error = "exit 1\r\nLink: https://evil.example.com"
	body := notify.Body(m)
	assert.True(t, strings.HasPrefix(body, "Pipeline app failed at stage test.\n\nOutcome:  failed\nPipeline: app\n"), body)
	assert.Contains(t, body, "Run:      run-42\n")
	assert.Contains(t, body, "Error:    exit 1\n          Link: https://evil.example.com\n",
		"a multi-line error cannot forge a field")
	assert.Contains(t, body, "\nLast lines of the log:\n\n--- FAIL: TestThing\nFAIL acme/app 0.1s\n")
	assert.NotContains(t, body, "\x1b[")

	ok := notify.Body(notify.Message{Pipeline: "app", Outcome: notify.OutcomeSucceeded})
	assert.Equal(t, "Pipeline app succeeded.\n\nOutcome:  succeeded\nPipeline: app\n", ok)
}

// A long log keeps its end, from a line start, under the size cap.
func TestBodyKeepsLogTail(t *testing.T) {
	var log strings.Builder
	for i := 0; log.Len() < 100<<10; i++ {
		log.WriteString(strings.Repeat("x", 70) + "\n")
	}
	log.WriteString("the last line\n")
	body := notify.Body(notify.Message{Pipeline: "app", Outcome: notify.OutcomeFailed, LogTail: log.String()})
	assert.Less(t, len(body), 17<<10)
	assert.Contains(t, body, "Last lines of the log:\n\n[…]\nxxxx")
	assert.True(t, strings.HasSuffix(body, "xxx\nthe last line\n"))
}

func TestRecipients(t *testing.T) {
	valid, rejected := notify.Recipients([]string{
		"Dev <dev@example.com>", "DEV@example.com", "ops@example.com", "", "a@b\nBcc: c@d", "two@x.com, three@x.com",
	})
	assert.Equal(t, []string{"dev@example.com", "ops@example.com"}, valid)
	assert.Len(t, rejected, 3)
	assert.Contains(t, rejected, "")
	assert.Equal(t, "line break in address", rejected["a@b\nBcc: c@d"])
	assert.Contains(t, rejected, "two@x.com, three@x.com")
}
