package gitx

import (
	"net/url"
	"slices"
	"strings"
)

// redacted replaces a password, as url.URL.Redacted does.
const redacted = "xxxxx"

// Redact returns rawURL with the password of its user info replaced by
// "xxxxx", for errors and logs: a clone URL may carry a token
// (https://x-access-token:TOKEN@host/o/r), and errors reach pull-request
// comments, emails and workflow histories. Other URLs and paths are
// returned as they are.
func Redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		if user := loneHTTPUser(u); user != "" {
			// https://TOKEN@host: a user name alone on http(s) is how
			// some hosts take a token.
			u.User = url.User(redacted)
			return u.String()
		}
		return u.Redacted()
	}
	// Unparsable, say for a bad escape in the password: cut it out as
	// written.
	if pass := rawPassword(rawURL); pass != "" {
		return strings.Replace(rawURL, ":"+pass+"@", ":"+redacted+"@", 1)
	}
	return rawURL
}

// secretsOf returns the password in rawURL as written and, when it is
// percent-encoded, decoded: git may print either. Longest first, so that
// scrubbing one does not leave part of another.
func secretsOf(rawURL string) []string {
	pass := rawPassword(rawURL)
	if u, err := url.Parse(rawURL); err == nil && pass == "" {
		pass = loneHTTPUser(u)
	}
	if pass == "" {
		return nil
	}
	out := []string{pass}
	if dec, err := url.PathUnescape(pass); err == nil && dec != pass && dec != "" {
		out = append(out, dec)
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// rawPassword is the password part of rawURL's user info, as written; ""
// when there is none. The authority ends at the first "/", "?" or "#", and
// the user info at its last "@", as url.Parse reads them.
func rawPassword(rawURL string) string {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pass, _ := strings.Cut(rest[:at], ":")
	return pass
}

// scrub replaces each secret in s.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	return s
}

// StripCredentials returns an HTTP(S) rawURL without its user info, which
// may hold a token as the password (x-access-token:TOKEN@) or as the user
// name alone (TOKEN@); other URLs (ssh://git@host names a login, not a
// secret) and paths as they are.
func StripCredentials(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return rawURL
	}
	u.User = nil
	return u.String()
}

// loneHTTPUser is the user name of an http(s) URL with no password, which
// may be a token; "" otherwise.
func loneHTTPUser(u *url.URL) string {
	if u.User == nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return ""
	}
	return u.User.Username()
}
