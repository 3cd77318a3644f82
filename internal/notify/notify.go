// Package notify tells people how a pipeline run ended: by email through SES
// or SMTP, and optionally on an SNS topic that other systems subscribe to.
//
// Parts of every message come from webhook data (ref names, committer
// emails), which a pusher controls. So header values are stripped of line
// breaks before they reach a header, and recipients are parsed with
// net/mail; a recipient that does not parse is reported, never sent to.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
)

// Outcomes a Message reports, as kiln's run workflow names them.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCancelled = "cancelled"
)

// Message is what people are told about one finished pipeline run.
type Message struct {
	// Pipeline, Repo, Ref, Commit and RunID identify the run; URL links to it.
	Pipeline, Repo, Ref, Commit, RunID, URL string
	// Outcome is OutcomeSucceeded, OutcomeFailed or OutcomeCancelled.
	Outcome string
	// FailedStage names the stage that failed; empty unless Outcome is failed.
	FailedStage string
	// Error is a short reason for a failure, for people.
	Error string
	// LogTail is the end of the failed stage's log; Body keeps its last
	// maxLogTail bytes.
	LogTail string
	// Tests are the build's test reports; Body sums them up.
	Tests []TestReport
	// To are the recipients the caller picked (pusher, committer). Each is
	// parsed with net/mail; only the bare address is used.
	To []string
}

// Sender delivers a Message through one channel.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrNoRecipients is returned by the email senders when a Message has no
// valid recipient left to send to.
var ErrNoRecipients = errors.New("no valid recipients")

// Result says what Notify did, per sender and per recipient.
type Result struct {
	// Sent names the senders that delivered, in name order.
	Sent []string
	// Failed maps a sender's name to why it did not deliver. The text never
	// carries secrets (the SMTP sender redacts its password).
	Failed map[string]string
	// Rejected maps a recipient, as the caller gave it, to why it was
	// skipped (not a valid address, or a line break in it).
	Rejected map[string]string
}

// OK reports whether every sender delivered and no recipient was skipped.
func (r Result) OK() bool { return len(r.Failed) == 0 && len(r.Rejected) == 0 }

// Notify sends m through every sender, in name order, and never stops early:
// a notification failing must not fail the run it reports on, nor keep the
// other channels quiet. Invalid recipients are dropped from m.To once, here,
// and listed in Result.Rejected.
func Notify(ctx context.Context, m Message, senders map[string]Sender) Result {
	res := Result{Failed: map[string]string{}}
	valid, rejected := Recipients(m.To)
	if len(rejected) > 0 {
		res.Rejected = rejected
	}
	m.To = valid

	names := make([]string, 0, len(senders))
	for name := range senders {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := senders[name]
		if s == nil {
			res.Failed[name] = "no sender configured"
			continue
		}
		if err := s.Send(ctx, m); err != nil {
			res.Failed[name] = err.Error()
			continue
		}
		res.Sent = append(res.Sent, name)
	}
	return res
}

// Recipients parses each address with net/mail.ParseAddress and returns the
// bare addresses that parse, without duplicates, and the ones that do not,
// mapped to why. A display name is dropped: it is webhook data and adds
// nothing a person needs.
func Recipients(to []string) (valid []string, rejected map[string]string) {
	seen := map[string]bool{}
	reject := func(raw, why string) {
		if rejected == nil {
			rejected = map[string]string{}
		}
		rejected[raw] = why
	}
	for _, raw := range to {
		if strings.ContainsAny(raw, "\r\n") {
			reject(raw, "line break in address")
			continue
		}
		addr, err := mail.ParseAddress(raw)
		if err != nil {
			reject(raw, fmt.Sprintf("not an email address: %v", err))
			continue
		}
		key := strings.ToLower(addr.Address)
		if !seen[key] {
			seen[key] = true
			valid = append(valid, addr.Address)
		}
	}
	return valid, rejected
}

// sender parses a configured From address, so a typo in config fails with a
// clear error rather than as a rejected MAIL FROM.
func sender(from string) (*mail.Address, error) {
	if strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("from address %q: line break", from)
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from address %q: %w", from, err)
	}
	return addr, nil
}
