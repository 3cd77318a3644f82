package activities

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Error types of permanent failures. Retrying them cannot help, so the
// workflows list them as non-retryable and a person reads the message.
const (
	ErrUnknownPipeline   = "UnknownPipeline"
	ErrManualNotAllowed  = "ManualNotAllowed"
	ErrRefNotFound       = "RefNotFound"
	ErrInvalidBuildspec  = "InvalidBuildspec"
	ErrBuildFailed       = "BuildFailed"
	ErrBuildTimedOut     = "BuildTimedOut"
	ErrInvalidRunRequest = "InvalidRunRequest"
)

// PermanentErrorTypes are the error types no retry policy retries.
var PermanentErrorTypes = []string{
	ErrUnknownPipeline, ErrManualNotAllowed, ErrRefNotFound, ErrInvalidBuildspec,
	ErrBuildFailed, ErrBuildTimedOut, ErrInvalidRunRequest,
}

// permanent makes a non-retryable application error of the given type.
func permanent(typ string, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}
