package report

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	gh "github.com/google/go-github/v60/github"
)

// Sentinel errors for the failures a retry cannot fix. Callers test them
// with errors.Is and make the activity's error non-retryable; anything else
// (rate limits, 5xx, resets, timeouts) is worth retrying.
var (
	// ErrUnauthorized: the host answered 401 or 403. The token is missing,
	// expired, or lacks the repo:status / issues:write permission.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: the host answered 404. The repository or pull request is
	// unknown, or the token cannot see a private repository.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the host answered 422, or the Run itself is malformed
	// (no commit, no PR, a repo that is not "owner/name").
	ErrInvalid = errors.New("invalid request")
)

// apiError is what every Reporter method returns on failure. Its message
// has the token scrubbed out; Unwrap keeps the sentinel and go-github's
// typed error (*RateLimitError, *ErrorResponse) reachable for errors.Is/As.
type apiError struct {
	msg  string
	errs []error
}

func (e *apiError) Error() string   { return e.msg }
func (e *apiError) Unwrap() []error { return e.errs }

// classify wraps err from a go-github call. what says what kiln was doing,
// e.g. "set status kiln/p/build on o/r@abc123".
func (r *Reporter) classify(err error, what string) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if kind := kindOf(err); kind != nil {
		errs = []error{kind, err}
	}
	msg := fmt.Sprintf("report: %s: %v", what, err)
	if len(errs) == 2 {
		msg = fmt.Sprintf("report: %s: %v: %v", what, errs[0], err)
	}
	return &apiError{msg: r.redact(msg), errs: errs}
}

// kindOf maps a go-github error to one of the sentinels, or nil when the
// failure may pass. Rate limits come first: GitHub sends them as 403s.
func kindOf(err error) error {
	var rl *gh.RateLimitError
	var abuse *gh.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &abuse) {
		return nil
	}
	var twoFactor *gh.TwoFactorAuthError
	if errors.As(err, &twoFactor) {
		return ErrUnauthorized
	}
	var resp *gh.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil {
		return nil
	}
	switch resp.Response.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnprocessableEntity:
		return ErrInvalid
	}
	return nil
}

// invalid reports a malformed Run before any request is sent.
func invalid(format string, args ...any) error {
	msg := "report: " + fmt.Sprintf(format, args...)
	return &apiError{msg: msg, errs: []error{ErrInvalid}}
}

// redact removes the token from s, in case a host or proxy echoes it back.
func (r *Reporter) redact(s string) string {
	if r.token == "" {
		return s
	}
	return strings.ReplaceAll(s, r.token, "[REDACTED]")
}

// LoadToken reads an API token from the environment variable named env or,
// when that is unset or empty, from the file at path file, trimming
// surrounding whitespace. Either may be "". Errors name the variable and
// the file that were tried, never the value.
func LoadToken(env, file string) (string, error) {
	if env != "" {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, nil
		}
	}
	if file == "" {
		if env == "" {
			return "", errors.New("report: no token source: set a token environment variable name or a token file")
		}
		return "", fmt.Errorf("report: token environment variable %s is unset or empty and no token file is configured", env)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		if env != "" {
			return "", fmt.Errorf("report: token environment variable %s is unset or empty, and reading the token file failed: %w", env, err)
		}
		return "", fmt.Errorf("report: reading the token file: %w", err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", fmt.Errorf("report: token file %s is empty", file)
	}
	return v, nil
}
