package ami

import (
	"errors"
	"fmt"
)

// Permanent failures of the steps, for errors.Is: a new attempt with the same
// input fails the same way. The error's message is for people and says what
// to fix; the activities turn it into a non-retryable error of their type.
// Any other error of a step is either classified by awsx.Classify already or
// retryable.
var (
	// ErrSourceMissing: the AMI to distribute is not in its region.
	ErrSourceMissing = errors.New("source AMI missing")
	// ErrSourceUnavailable: the AMI to distribute is not in the available state.
	ErrSourceUnavailable = errors.New("source AMI not available")
	// ErrKeyUnusable: the KMS key a copy is to be encrypted with is not enabled.
	ErrKeyUnusable = errors.New("KMS key unusable")
	// ErrCopyFailed: AWS gave up on a copy, or the copy disappeared.
	ErrCopyFailed = errors.New("copy failed")
	// ErrRefUnusable: a target's SSM parameter cannot hold an AMI (it has
	// another data type, which AWS cannot change).
	ErrRefUnusable = errors.New("parameter unusable")
	// ErrInstanceFailed: EC2 stopped a test instance before it ran, for a
	// reason of the client's (Client.*) that a new launch would meet again.
	ErrInstanceFailed = errors.New("test instance failed")
)

// failure is a permanent failure of one of the Err* kinds, with its message.
type failure struct {
	kind error
	msg  string
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.kind }

// fail makes a failure of kind; its message is format's alone, so the kind's
// own words do not repeat in it.
func fail(kind error, format string, args ...any) error {
	return &failure{kind: kind, msg: fmt.Sprintf(format, args...)}
}
