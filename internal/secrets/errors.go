package secrets

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
)

// Kind says why a secret cannot be read. Every Kind is permanent: the same
// reference, credentials and secret fail the same way on a retry.
type Kind string

const (
	// KindInvalidReference: the reference does not parse, so no call was made.
	KindInvalidReference Kind = "InvalidReference"
	// KindNotFound: no such secret, parameter, version, stage or label in
	// the region read.
	KindNotFound Kind = "NotFound"
	// KindAccessDenied: the credentials may not read the secret or parameter,
	// or may not use the KMS key that encrypts it.
	KindAccessDenied Kind = "AccessDenied"
	// KindInvalidValue: the secret was read but cannot give what the
	// reference asks for: its json-key is absent, the value is not a JSON
	// object, or AWS returned no value at all.
	KindInvalidValue Kind = "InvalidValue"
	// KindRejected: AWS refused the request as invalid, e.g. for a secret
	// scheduled for deletion or a version-stage and version-id that name
	// different versions.
	KindRejected Kind = "Rejected"
)

// Store names where a reference points, with the buildspec key that holds it.
type Store string

// The two stores, spelled as the buildspec keys under env.
const (
	StoreSecretsManager Store = "secrets-manager"
	StoreParameterStore Store = "parameter-store"
)

// Error is a permanent failure to read one secret: retrying cannot help,
// so an activity should return it as a non-retryable error. Any other error
// from this package is transient (throttling, 5xx, network) and worth
// retrying. Its message names the reference and what to check, and never
// holds the secret's value.
type Error struct {
	// Kind says what went wrong, for code.
	Kind Kind
	// Store is where Ref points.
	Store Store
	// Ref is the reference as written in the buildspec.
	Ref string
	// Msg says what went wrong and what to check, for people.
	Msg string
	// Err is the AWS error behind it, or nil. Errors about a value that was
	// read never wrap anything: a JSON decoder's error quotes the value.
	Err error
}

// Error reads `secrets-manager "prod/db:password": ...`.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Store, e.Ref, e.Msg)
}

// Unwrap returns the AWS error, so callers can still inspect its code.
func (e *Error) Unwrap() error { return e.Err }

// permanentCodes maps the error codes of GetSecretValue and GetParameter
// that a retry cannot fix to their Kind. Throttling, InternalServiceError,
// InternalServerError and ExpiredToken (the credential cache renews it) are
// absent on purpose and stay retryable.
var permanentCodes = map[string]Kind{
	"ResourceNotFoundException": KindNotFound,
	"ParameterNotFound":         KindNotFound,
	"ParameterVersionNotFound":  KindNotFound,

	"AccessDeniedException":       KindAccessDenied,
	"AccessDenied":                KindAccessDenied,
	"UnrecognizedClientException": KindAccessDenied,
	"InvalidClientTokenId":        KindAccessDenied,
	"DecryptionFailure":           KindAccessDenied, // Secrets Manager: KMS refused to decrypt
	"InvalidKeyId":                KindAccessDenied, // SSM: the SecureString's KMS key is unusable

	"InvalidRequestException":   KindRejected,
	"InvalidParameterException": KindRejected,
	"ValidationException":       KindRejected,
}

// classify turns an error from GetSecretValue or GetParameter into an *Error
// when retrying cannot help, and otherwise wraps it with the reference.
// where is the region the call went to, for the message.
func classify(err error, store Store, ref, where string) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s %q in %s: %w", store, ref, where, err)
	}
	kind, ok := permanentCodes[apiErr.ErrorCode()]
	if !ok {
		return fmt.Errorf("%s %q in %s: %w", store, ref, where, err)
	}
	// AWS's own message helps (it names the denied action and principal) but
	// SSM often sends none, so the hint must stand alone.
	msg := fmt.Sprintf("%s in %s (%s", describe[kind], where, apiErr.ErrorCode())
	if m := apiErr.ErrorMessage(); m != "" {
		msg += ": " + m
	}
	msg += "); " + hint(store, apiErr.ErrorCode(), kind, where)
	return &Error{Kind: kind, Store: store, Ref: ref, Msg: msg, Err: err}
}

// describe names each Kind that an AWS error can have, for people.
var describe = map[Kind]string{
	KindNotFound:     "not found",
	KindAccessDenied: "access denied",
	KindRejected:     "request rejected",
}

// hint says what a person should check, naming the IAM action and region.
func hint(store Store, code string, kind Kind, where string) string {
	switch {
	case code == "DecryptionFailure" || code == "InvalidKeyId":
		return "check that the KMS key encrypting it is enabled and that the worker's role may use it (kms:Decrypt)"
	case store == StoreSecretsManager && kind == KindNotFound:
		return "check the secret's name, its version-stage or version-id if the reference gives one, " +
			"and that it exists in " + where + "; a secret in another region or account needs its full ARN"
	case store == StoreSecretsManager && kind == KindAccessDenied:
		return "check that the worker's role allows secretsmanager:GetSecretValue on the secret in " + where +
			" (and kms:Decrypt on its KMS key if that is a customer managed key; " +
			"a secret in another account must also allow it in its resource policy)"
	case store == StoreSecretsManager:
		return "check the reference; a secret scheduled for deletion must be restored before it can be read, " +
			"and a version-stage and version-id given together must name the same version"
	case kind == KindNotFound:
		return "check the parameter's name (names are case-sensitive; hierarchical ones start with /), " +
			"its :version or :label selector if any, and that it exists in " + where +
			"; a parameter shared from another account needs its full ARN"
	case kind == KindAccessDenied:
		return "check that the worker's role allows ssm:GetParameter on the parameter in " + where +
			" (and kms:Decrypt on the key of a SecureString encrypted with a customer managed key)"
	default:
		return "check the parameter's name and selector"
	}
}
