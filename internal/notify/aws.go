package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// sesMaxRecipients is SES's limit on recipients per message.
const sesMaxRecipients = 50

// snsMaxSubject is SNS's limit on a Publish subject, in characters.
const snsMaxSubject = 100

// SESAPI is the part of *sesv2.Client the SES sender uses.
type SESAPI interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, opts ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// SES sends a Message as a plain-text email through Amazon SES (API v2).
type SES struct {
	// Client is usually sesv2.NewFromConfig(cfg).
	Client SESAPI
	// From is the sender, an identity verified in SES, e.g.
	// "kiln <ci@example.com>".
	From string
}

// Send emails m to its valid recipients, in batches SES accepts. SES builds
// the headers from the structured fields, and Subject has no line breaks, so
// nothing from the webhook can add a header.
func (s SES) Send(ctx context.Context, m Message) error {
	if s.Client == nil {
		return errors.New("ses: no client")
	}
	from, err := sender(s.From)
	if err != nil {
		return fmt.Errorf("ses: %w", err)
	}
	to, _ := Recipients(m.To)
	if len(to) == 0 {
		return fmt.Errorf("ses: %w", ErrNoRecipients)
	}
	fromHeader := from.Address
	if from.Name != "" {
		fromHeader = from.String() // RFC 2047-encoded if the name is not ASCII
	}
	content := &sestypes.EmailContent{Simple: &sestypes.Message{
		Subject: &sestypes.Content{Data: aws.String(Subject(m)), Charset: aws.String("UTF-8")},
		Body: &sestypes.Body{Text: &sestypes.Content{
			Data: aws.String(Body(m)), Charset: aws.String("UTF-8"),
		}},
	}}
	for start := 0; start < len(to); start += sesMaxRecipients {
		batch := to[start:min(start+sesMaxRecipients, len(to))]
		_, err := s.Client.SendEmail(ctx, &sesv2.SendEmailInput{
			FromEmailAddress: aws.String(fromHeader),
			Destination:      &sestypes.Destination{ToAddresses: batch},
			Content:          content,
		})
		if err != nil {
			return fmt.Errorf("ses: send to %d recipients: %w", len(batch), err)
		}
	}
	return nil
}

// SNSAPI is the part of *sns.Client the SNS sender uses.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes a Message to a topic, for chat bridges, pagers or anything
// else that subscribes. Recipients are ignored: the topic's subscribers are
// the audience.
type SNS struct {
	// Client is usually sns.NewFromConfig(cfg).
	Client SNSAPI
	// TopicARN is the topic to publish to.
	TopicARN string
}

// Send publishes Subject(m) (cut to SNS's 100 characters) and Body(m), with
// message attributes "outcome" and "pipeline" so subscriptions can filter.
func (s SNS) Send(ctx context.Context, m Message) error {
	if s.Client == nil {
		return errors.New("sns: no client")
	}
	if s.TopicARN == "" {
		return errors.New("sns: no topic ARN")
	}
	attrs := map[string]snstypes.MessageAttributeValue{}
	// SNS rejects an attribute with an empty value, so absent ones are left out.
	for name, v := range map[string]string{"outcome": m.Outcome, "pipeline": m.Pipeline} {
		if v != "" {
			attrs[name] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	_, err := s.Client.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(s.TopicARN),
		Subject:           aws.String(truncate(Subject(m), snsMaxSubject)),
		Message:           aws.String(Body(m)),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("sns: publish to %s: %w", s.TopicARN, err)
	}
	return nil
}
