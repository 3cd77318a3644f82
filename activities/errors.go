package activities

import (
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ci/kiln/internal/awsx"
)

// Error types of permanent failures. Retrying them cannot help, so the
// workflows list them as non-retryable and a person reads the message.
const (
	ErrUnknownPipeline    = "UnknownPipeline"
	ErrManualNotAllowed   = "ManualNotAllowed"
	ErrRefNotFound        = "RefNotFound"
	ErrInvalidBuildspec   = "InvalidBuildspec"
	ErrBuildFailed        = "BuildFailed"
	ErrBuildTimedOut      = "BuildTimedOut"
	ErrInvalidRunRequest  = "InvalidRunRequest"
	ErrBakeFailed         = "BakeFailed"
	ErrBakeTimedOut       = "BakeTimedOut"
	ErrInvalidBakeRequest = "InvalidBakeRequest"
	// ErrAMITestFailed: the test command failed against the AMI's instance;
	// the AMI is tagged kiln:test=failed and the run stops before distribution.
	ErrAMITestFailed = "AMITestFailed"
	// ErrAMITestTimedOut: the instance or the test command outlived
	// stages.test.timeout.
	ErrAMITestTimedOut = "AMITestTimedOut"
	// ErrInvalidTestRequest: the test stage cannot start, e.g. the bake made
	// no AMI in the test region.
	ErrInvalidTestRequest = "InvalidTestRequest"
	// ErrTestInstanceFailed: EC2 stopped the test instance before it ran,
	// for a reason of the client's (Client.*), such as an unusable KMS key
	// or a volume limit, that a new launch would meet again.
	ErrTestInstanceFailed = "TestInstanceFailed"
	// ErrNoContainers: the pipeline builds in an image and the worker that
	// planned the run has no container runtime.
	ErrNoContainers = "NoContainers"
	// ErrSecretUnavailable: a secret a stage declares (or its buildspec's
	// env.secrets-manager or env.parameter-store names) cannot be read: the
	// worker's variable or file is missing, or AWS says the secret does not
	// exist or may not be read. The message names the variable and where it
	// is read, never the value.
	ErrSecretUnavailable = "SecretUnavailable"
)

// Error types of failures a retry may get past. They are ApplicationErrors
// only so that the message and the type read well in the UI.
const (
	// ErrBakeInterrupted: Packer was killed (e.g. out of memory), could not
	// start, or AWS failed the build with throttling, missing capacity or an
	// outage.
	ErrBakeInterrupted = "BakeInterrupted"
)

// RetryableErrorTypes are kiln's error types that a retry may get past; a
// test holds every Err* type of this package to be in it or in
// PermanentErrorTypes.
var RetryableErrorTypes = []string{ErrBakeInterrupted}

// PermanentErrorTypes are the error types no retry policy retries: kiln's own
// and the AWS ones awsx.Classify produces (access denied, not found, unusable
// KMS key, invalid request).
var PermanentErrorTypes = append([]string{
	ErrUnknownPipeline, ErrManualNotAllowed, ErrRefNotFound, ErrInvalidBuildspec,
	ErrBuildFailed, ErrBuildTimedOut, ErrInvalidRunRequest,
	ErrBakeFailed, ErrBakeTimedOut, ErrInvalidBakeRequest,
	ErrAMITestFailed, ErrAMITestTimedOut, ErrInvalidTestRequest, ErrTestInstanceFailed,
	ErrCopyFailed, ErrInvalidDistribution, ErrReportRefused, ErrInvalidTemplate,
	ErrRegistryRefused, ErrInvalidImage, ErrImageTestFailed, ErrNoContainers, ErrSecretUnavailable, ErrNoAMIs,
}, awsx.PermanentErrorTypes...)

// permanent makes a non-retryable application error of the given type.
func permanent(typ string, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}

// retryable makes a retryable application error of the given type.
func retryable(typ string, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), typ)
}
