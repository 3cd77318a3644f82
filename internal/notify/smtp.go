package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// TLS modes for SMTP.TLS.
const (
	// TLSAuto upgrades with STARTTLS when the server offers it and sends in
	// clear otherwise. Credentials still never go out in clear: net/smtp
	// refuses PLAIN auth without TLS except to localhost.
	TLSAuto = ""
	// TLSStartTLS requires STARTTLS and fails if the server does not offer it.
	TLSStartTLS = "starttls"
	// TLSNone never upgrades, for a relay on localhost or a test server.
	TLSNone = "none"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
)

// smtpTimeout bounds a whole send when the context has no deadline, so a
// server that stops answering cannot hold a worker forever.
const smtpTimeout = 30 * time.Second

// SMTP sends a Message as a plain-text email through an SMTP server.
type SMTP struct {
	// Addr is the server as host:port, e.g. "smtp.example.com:587".
	Addr string
	// From is the sender, e.g. "kiln <ci@example.com>".
	From string
	// Username and Password, when Username is set, authenticate with PLAIN.
	// The password never appears in an error.
	Username, Password string
	// TLS is one of TLSAuto (the default), TLSStartTLS, TLSNone, TLSImplicit.
	TLS string
	// TLSConfig overrides the TLS settings, e.g. to trust a private CA.
	// ServerName defaults to Addr's host.
	TLSConfig *tls.Config
}

// Send emails m to its valid recipients. Recipients the server refuses are
// skipped; the others still get the mail, and the error names the refused.
func (s SMTP) Send(ctx context.Context, m Message) error {
	return s.redact(s.send(ctx, m))
}

func (s SMTP) send(ctx context.Context, m Message) error {
	from, err := sender(s.From)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	to, _ := Recipients(m.To)
	if len(to) == 0 {
		return fmt.Errorf("smtp: %w", ErrNoRecipients)
	}
	msg, err := compose(from, to, m, time.Now())
	if err != nil {
		return fmt.Errorf("smtp: compose: %w", err)
	}
	c, stop, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	defer stop()
	defer c.Close()
	refused, err := s.deliver(c, from.Address, to, msg)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", s.Addr, err)
	}
	if len(refused) > 0 {
		return fmt.Errorf("smtp %s: server refused %d of %d recipients: %s",
			s.Addr, len(refused), len(to), strings.Join(refused, "; "))
	}
	return nil
}

// dial connects, says hello, upgrades to TLS as configured and logs in.
// The caller calls stop once done, to stop watching ctx.
func (s SMTP) dial(ctx context.Context) (c *smtp.Client, stop func() bool, err error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		cfg = s.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	var conn net.Conn
	switch s.TLS {
	case TLSImplicit:
		conn, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", s.Addr)
	case TLSAuto, TLSStartTLS, TLSNone:
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	default:
		return nil, nil, fmt.Errorf("unknown TLS mode %q (want starttls, none or tls)", s.TLS)
	}
	if err != nil {
		return nil, nil, err
	}
	// net/smtp takes no context: a deadline on the connection bounds every
	// step, and cancelling ctx closes it.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(smtpTimeout)
	}
	_ = conn.SetDeadline(deadline)
	stop = context.AfterFunc(ctx, func() { conn.Close() })
	if c, err = smtp.NewClient(conn, host); err != nil {
		stop()
		conn.Close()
		return nil, nil, err
	}
	if err := s.secure(c, cfg); err != nil {
		stop()
		c.Close()
		return nil, nil, err
	}
	return c, stop, nil
}

// secure upgrades with STARTTLS as the mode asks, then authenticates.
func (s SMTP) secure(c *smtp.Client, cfg *tls.Config) error {
	if s.TLS == TLSAuto || s.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(cfg); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		} else if s.TLS == TLSStartTLS {
			return errors.New("server does not offer STARTTLS")
		}
	}
	if s.Username == "" {
		return nil
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return errors.New("server does not offer AUTH")
	}
	if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, cfg.ServerName)); err != nil {
		return fmt.Errorf("auth as %s: %w", s.Username, err)
	}
	return nil
}

// deliver runs one mail transaction; it returns the recipients the server
// refused, each with the server's reason.
func (s SMTP) deliver(c *smtp.Client, from string, to []string, msg []byte) ([]string, error) {
	if err := c.Mail(from); err != nil {
		return nil, fmt.Errorf("mail from: %w", err)
	}
	var refused []string
	for _, addr := range to {
		if err := c.Rcpt(addr); err != nil {
			refused = append(refused, fmt.Sprintf("%s: %v", addr, err))
		}
	}
	if len(refused) == len(to) {
		return nil, fmt.Errorf("no recipient accepted: %s", strings.Join(refused, "; "))
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	_ = c.Quit() // the mail is accepted; a failed goodbye changes nothing
	return refused, nil
}

// compose builds the RFC 5322 message. Every header value is either a parsed
// address or Subject (which has no line breaks), encoded as RFC 2047 when it
// is not ASCII; the body is quoted-printable so any log text survives.
func compose(from *mail.Address, to []string, m Message, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = (&mail.Address{Address: a}).String()
	}
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, headerValue(v)) }
	header("From", from.String())
	header("To", strings.Join(rcpts, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", Subject(m)))
	header("Date", now.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(Body(m))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// redact removes the password, and the PLAIN blob that carries it, from an
// error's text; a server may echo what it was sent. A redacted error does not
// wrap the original, which would still hold the secret.
func (s SMTP) redact(err error) error {
	if err == nil || s.Password == "" {
		return err
	}
	text := err.Error()
	blob := base64.StdEncoding.EncodeToString([]byte("\x00" + s.Username + "\x00" + s.Password))
	clean := strings.NewReplacer(blob, "[redacted]", s.Password, "[redacted]").Replace(text)
	if clean == text {
		return err
	}
	return errors.New(clean)
}
