package notify_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// received is one mail transaction the test SMTP server accepted.
type received struct {
	From string
	To   []string
	Data string
	TLS  bool // the mail arrived over STARTTLS
}

// smtpServer is a minimal in-process SMTP server: enough of RFC 5321 for
// net/smtp (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT).
type smtpServer struct {
	Addr string
	// Auth advertises AUTH PLAIN; AuthReply answers it ("235 ..." accepts).
	Auth      bool
	AuthReply string
	// TLS, when set, advertises STARTTLS with this config.
	TLS *tls.Config
	// Refuse lists recipients RCPT TO answers 550 for.
	Refuse map[string]bool

	mu    sync.Mutex
	mails []received
	auths []string // the AUTH command lines received
}

// startSMTP listens on 127.0.0.1 and serves until the test ends. Options are
// set on srv before the first connection, so no locking is needed for them.
func startSMTP(t *testing.T, srv *smtpServer) *smtpServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv.Addr = l.Addr().String()
	if srv.AuthReply == "" {
		srv.AuthReply = "235 2.7.0 Authentication successful"
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go srv.serve(conn)
		}
	}()
	return srv
}

// Mails returns what the server has accepted so far.
func (s *smtpServer) Mails() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...)
}

// Auths returns the AUTH commands the server has seen.
func (s *smtpServer) Auths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func (s *smtpServer) serve(conn net.Conn) {
	defer func() { conn.Close() }() // conn changes on STARTTLS
	tp := textproto.NewConn(conn)
	tp.PrintfLine("220 test ESMTP")
	var cur received
	secure := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250-test"}
			if s.TLS != nil && !secure {
				ext = append(ext, "250-STARTTLS")
			}
			if s.Auth {
				ext = append(ext, "250-AUTH PLAIN")
			}
			ext = append(ext, "250 8BITMIME")
			tp.PrintfLine("%s", strings.Join(ext, "\r\n"))
		case "STARTTLS":
			tp.PrintfLine("220 2.0.0 go ahead")
			tc := tls.Server(conn, s.TLS)
			if tc.Handshake() != nil {
				return
			}
			conn, secure = tc, true
			tp = textproto.NewConn(tc)
		case "AUTH":
			s.mu.Lock()
			s.auths = append(s.auths, line)
			s.mu.Unlock()
			tp.PrintfLine("%s", s.AuthReply)
		case "MAIL":
			cur = received{From: addrArg(arg), TLS: secure}
			tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			if a := addrArg(arg); s.Refuse[a] {
				tp.PrintfLine("550 5.1.1 no such user %s", a)
			} else {
				cur.To = append(cur.To, a)
				tp.PrintfLine("250 2.1.5 ok")
			}
		case "DATA":
			tp.PrintfLine("354 end with <CRLF>.<CRLF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			cur.Data = string(data)
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			tp.PrintfLine("250 2.0.0 queued")
		case "RSET", "NOOP":
			tp.PrintfLine("250 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

// addrArg takes the address out of "FROM:<a@b>" or "TO:<a@b> SIZE=1".
func addrArg(arg string) string {
	_, v, _ := strings.Cut(arg, ":")
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	return strings.Trim(v, "<>")
}

// unusedAddr is a 127.0.0.1 address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
