package oci

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors callers match with errors.Is to decide what not to retry. All are
// permanent: new attempts with the same credentials, references and files
// fail the same way.
var (
	// ErrUnauthorized marks a registry that refused the credentials (HTTP
	// 401 or 403), or an ECR login that AWS denied.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound marks a base image, tag or platform the registry does not
	// have.
	ErrNotFound = errors.New("not found")
	// ErrInvalid marks an image that cannot be built or pushed as given:
	// two files for one target, a file where a directory must go, a
	// source that is not a regular file, a reference that does not parse,
	// or a registry refusing a tag, name or manifest as invalid (ECR
	// refuses to overwrite a tag of an immutable repository this way).
	ErrInvalid = errors.New("invalid image")
	// ErrTagConflict marks a WriteOnce tag that already points at another
	// commit's image (see TagPolicy).
	ErrTagConflict = errors.New("write-once tag exists")
)

// notFoundCodes are the registry error codes that mean a missing manifest or
// repository, whatever HTTP status the registry sent them with.
var notFoundCodes = map[transport.ErrorCode]bool{
	transport.ManifestUnknownErrorCode: true,
	transport.NameUnknownErrorCode:     true,
	transport.BlobUnknownErrorCode:     true,
}

// invalidCodes are the registry error codes that refuse what kiln sent
// rather than how it got there, so sending it again fails again.
// MANIFEST_BLOB_UNKNOWN is not one: a blob that went missing between
// ggcr's check and the manifest PUT is uploaded by the next attempt.
var invalidCodes = map[transport.ErrorCode]bool{
	transport.TagInvalidErrorCode:      true,
	transport.ManifestInvalidErrorCode: true,
	transport.NameInvalidErrorCode:     true,
}

// classify wraps err from ggcr with what kiln was doing to which reference,
// and with ErrUnauthorized, ErrNotFound or ErrInvalid when the registry's
// answer means one of them. Every secret in secrets is cut from the message first: ggcr
// quotes registry response bodies, and a registry may echo what it was sent.
func classify(err error, op, ref string, secrets []string) error {
	if err == nil {
		return nil
	}
	cause := redact(err, secrets)
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s %s: %w (HTTP %d): %w", op, ref, ErrUnauthorized, terr.StatusCode, cause)
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, notFoundCodes):
			return fmt.Errorf("%s %s: %w: %w", op, ref, ErrNotFound, cause)
		case hasCode(terr, invalidCodes):
			if strings.Contains(cause.Error(), "immutable") {
				return fmt.Errorf("%s %s: %w: the repository's tags are immutable and this one exists: %w", op, ref, ErrInvalid, cause)
			}
			return fmt.Errorf("%s %s: %w: %w", op, ref, ErrInvalid, cause)
		}
	}
	return fmt.Errorf("%s %s: %w", op, ref, cause)
}

func hasCode(terr *transport.Error, codes map[transport.ErrorCode]bool) bool {
	for _, d := range terr.Errors {
		if codes[d.Code] {
			return true
		}
	}
	return false
}

// isNotFound reports whether err is the registry saying a manifest is not
// there, which for a tag about to be pushed is the normal case.
func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || hasCode(terr, notFoundCodes))
}

// redact returns err, or, when its message holds a secret, an error with the
// same text and every secret replaced. The replacement drops err's chain on
// purpose: anything that unwrapped it could print the secret again.
func redact(err error, secrets []string) error {
	msg := err.Error()
	hit := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg, hit = strings.ReplaceAll(msg, s, "[redacted]"), true
		}
	}
	if !hit {
		return err
	}
	return errors.New(msg)
}
