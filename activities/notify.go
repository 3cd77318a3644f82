package activities

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/buildspec"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/internal/event"
	"github.com/kiln-ci/kiln/internal/notify"
)

// NotifyInput is a finished run to tell people about.
type NotifyInput struct {
	RunID    string         `json:"run_id"`
	Pipeline string         `json:"pipeline"`
	Event    event.Event    `json:"event"`
	Repo     string         `json:"repo"`
	Commit   string         `json:"commit"`
	Notify   *config.Notify `json:"notify"`
	// Outcome is succeeded, failed or cancelled; FailedStage and Error say
	// where and why a run failed.
	Outcome     string `json:"outcome"`
	FailedStage string `json:"failed_stage,omitempty"`
	Error       string `json:"error,omitempty"`
	// Tests are the build's test reports.
	Tests []buildspec.ReportResult `json:"tests,omitempty"`
}

// NotifyResult says, per channel (email, sns), what happened.
type NotifyResult struct {
	Sent     []string          `json:"sent,omitempty"`
	Failed   map[string]string `json:"failed,omitempty"`
	Rejected map[string]string `json:"rejected,omitempty"`
}

// Notify mails the outcome and publishes it to SNS as configured. It never
// fails: what could not be sent is in the result (and the worker's log), as
// a failure to notify must not fail the run, and a retry would mail twice.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) (*NotifyResult, error) {
	m := notify.Message{Pipeline: in.Pipeline, Repo: in.Repo, Ref: in.Event.RefLabel(), Commit: in.Commit,
		RunID: in.RunID, Outcome: in.Outcome, FailedStage: in.FailedStage, Error: in.Error, Tests: in.Tests}
	senders, failed := map[string]notify.Sender{}, map[string]string{}
	if e := in.Notify.Email; e != nil {
		m.To = append(m.To, e.To...)
		if (e.Committer == nil || *e.Committer) && in.Event.Email != "" {
			m.To = append(m.To, in.Event.Email)
		}
		if s, err := a.emailSender(ctx, e); err != nil {
			failed["email"] = err.Error()
		} else {
			senders["email"] = s
		}
	}
	if t := in.Notify.SNS; t != nil {
		if s, err := a.snsSender(ctx, t); err != nil {
			failed["sns"] = err.Error()
		} else {
			senders["sns"] = s
		}
	}
	res := notify.Notify(ctx, m, senders)
	for k, v := range res.Failed {
		failed[k] = v
	}
	out := &NotifyResult{Sent: res.Sent, Rejected: res.Rejected}
	if len(failed) > 0 {
		out.Failed = failed
		a.Log.Warn().Str("run", in.RunID).Interface("failed", failed).Msg("could not notify of the run's outcome")
	}
	return out, nil
}

func (a *Activities) emailSender(ctx context.Context, e *config.EmailNotify) (notify.Sender, error) {
	if e.Via == "smtp" {
		if e.SMTP == nil {
			return nil, fmt.Errorf("email via smtp names no smtp server")
		}
		s := &notify.SMTP{Addr: e.SMTP.Addr, From: e.From, Username: e.SMTP.Username, TLS: e.SMTP.TLS}
		if e.SMTP.Password != (config.SecretRef{}) {
			pw, err := e.SMTP.Password.Resolve()
			if err != nil {
				return nil, fmt.Errorf("SMTP password: %w", err)
			}
			s.Password = string(pw)
		}
		return s, nil
	}
	cfg, err := awsx.Config(ctx, e.Region)
	if err != nil {
		return nil, err
	}
	return &notify.SES{Client: sesv2.NewFromConfig(cfg), From: e.From}, nil
}

func (a *Activities) snsSender(ctx context.Context, t *config.SNSNotify) (notify.Sender, error) {
	region := t.Region
	if region == "" {
		// arn:aws:sns:<region>:<account>:<topic>
		if parts := strings.Split(t.TopicARN, ":"); len(parts) > 3 {
			region = parts[3]
		}
	}
	cfg, err := awsx.Config(ctx, region)
	if err != nil {
		return nil, err
	}
	return &notify.SNS{Client: sns.NewFromConfig(cfg), TopicARN: t.TopicARN}, nil
}
