package buildkit

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a caller can act on; both are permanent: a retry meets them again.
var (
	// ErrImageNotFound: an image (a build image or a Dockerfile's base)
	// does not exist, or the registry does not say it does to kiln.
	ErrImageNotFound = errors.New("image not found")
	// ErrUnauthorized: a registry refused kiln's credentials.
	ErrUnauthorized = errors.New("registry refused the credentials")
	// ErrInvalid: the Dockerfile or a build option is wrong.
	ErrInvalid = errors.New("invalid build")
)

// classify wraps err with the class its message shows. BuildKit reports
// registry and frontend failures only as text, so the text is all there is.
func classify(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "401 unauthorized"), strings.Contains(msg, "403 forbidden"),
		strings.Contains(msg, "authorization failed"), strings.Contains(msg, "insufficient_scope"):
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case strings.Contains(msg, ": not found"), strings.Contains(msg, "manifest unknown"),
		strings.Contains(msg, "name unknown"), strings.Contains(msg, "404 not found"):
		return fmt.Errorf("%w: %w", ErrImageNotFound, err)
	case strings.Contains(msg, "dockerfile parse error"), strings.Contains(msg, "failed to parse dockerfile"),
		strings.Contains(msg, "unknown instruction"), strings.Contains(msg, "target stage") && strings.Contains(msg, "could not be found"):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
