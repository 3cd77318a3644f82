package activities

import (
	"errors"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
)

// Tag keys kiln puts on the AMIs it bakes, copies and tests: internal/ami's,
// under the names the stages' end-to-end tests (test/ami, test/cluster and
// others) know them by. Code in this package uses ami's own.
const (
	TagPipeline = ami.TagPipeline
	TagCommit   = ami.TagCommit
	TagRef      = ami.TagRef
	TagRun      = ami.TagRun
	TagTest     = ami.TagTest
	TagSource   = ami.TagSource
)

// defaultAWS serves Activities that name no AWS clients.
var defaultAWS = &ami.DefaultClients{}

func (a *Activities) clients() ami.Clients {
	if a.AWS == nil {
		return defaultAWS
	}
	return a.AWS
}

// amiErrorTypes are the error types of internal/ami's permanent failures.
var amiErrorTypes = []struct {
	kind error
	typ  string
}{
	{ami.ErrSourceMissing, awsx.TypeNotFound},
	{ami.ErrSourceUnavailable, ErrInvalidDistribution},
	{ami.ErrKeyUnusable, awsx.TypeKMSKeyUnusable},
	{ami.ErrCopyFailed, ErrCopyFailed},
	{ami.ErrRefUnusable, ErrInvalidDistribution},
	{ami.ErrInstanceFailed, ErrTestInstanceFailed},
}

// amiError makes a permanent failure of an internal/ami step a non-retryable
// error of its type, with the step's message. Other errors are returned as
// they are: the steps classified AWS's already.
func amiError(err error) error {
	for _, t := range amiErrorTypes {
		if errors.Is(err, t.kind) {
			return permanent(t.typ, "%s", err.Error())
		}
	}
	return err
}
