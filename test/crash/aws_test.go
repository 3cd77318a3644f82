package crash

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kiln-ci/kiln/activities"
	"github.com/kiln-ci/kiln/test/testkit"
)

// asAccount is an AWS config straight at moto, acting in account through
// its kiln-distribute role, so the test's own set-up and checks stay out of
// the proxy's record (and of its rewrites, such as pending copies).
func asAccount(motoURL, account, region string) aws.Config {
	return testkit.MotoAs(motoURL, roleOf(account), region)
}

// copiesOf returns the IDs of the images account owns in region that are
// tagged as copies of source, in any state.
func copiesOf(t *testing.T, motoURL, account, region, source string) []string {
	t.Helper()
	return testkit.ImagesTagged(t, asAccount(motoURL, account, region), activities.TagSource, source)
}
