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
	case containsAny(msg, "401 unauthorized", "403 forbidden", "authorization failed", "insufficient_scope"):
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	case containsAny(msg, ": not found", "manifest unknown", "name unknown", "404 not found"):
		return fmt.Errorf("%w: %w", ErrImageNotFound, err)
	case containsAny(msg, "dockerfile parse error", "failed to parse dockerfile", "unknown instruction"),
		strings.Contains(msg, "target stage") && strings.Contains(msg, "could not be found"):
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
