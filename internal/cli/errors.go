package cli

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
)

// plain words err for people. Temporal wraps a run's failure in its own
// layers ("workflow execution error (type: …, workflowID: …): activity
// error (type: Build, scheduledEventID: …): <cause> (type: BuildFailed,
// retryable: false)"); what a person needs is the cause, once, so plain
// unwraps to the innermost application error's message. Other errors keep
// their own words.
func plain(err error) string {
	var app *temporal.ApplicationError
	var canceled *temporal.CanceledError
	var terminated *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &app):
		// An application error can wrap another (a child run's failure);
		// the innermost says what happened.
		for {
			var inner *temporal.ApplicationError
			if next := app.Unwrap(); next == nil || !errors.As(next, &inner) {
				break
			}
			app = inner
		}
		return app.Message()
	case errors.As(err, &canceled):
		return "it was cancelled"
	case errors.As(err, &terminated):
		return "it was terminated (kiln does not terminate runs; someone did, in the Web UI or with temporal workflow terminate)"
	case errors.As(err, &timeout):
		return fmt.Sprintf("it timed out (%s)", strings.ToLower(strings.TrimPrefix(timeout.TimeoutType().String(), "TIMEOUT_TYPE_")))
	}
	return err.Error()
}

// isNotFound says whether Temporal has no such run, or no longer lets it
// be changed (it has ended).
func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
