package cluster

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/testkit"
)

// motoAs is an AWS config straight at moto, in the builder's account
// (account "") or acting in account through its kiln-distribute role.
func motoAs(motoURL, account, region string) aws.Config {
	role := ""
	if account != "" {
		role = "arn:aws:iam::" + account + ":role/kiln-distribute"
	}
	return testkit.MotoAs(motoURL, role, region)
}

// imagesTagged returns the IDs of the images account ("": the builder's)
// owns in region whose tag key is value, in any state.
func (c *cluster) imagesTagged(t *testing.T, account, region, key, value string) []string {
	t.Helper()
	return testkit.ImagesTagged(t, motoAs(c.moto.URL, account, region), key, value)
}

// calls counts the requests the proxy recorded of action, made in account
// and region, that match (nil: all).
func (c *cluster) calls(action, account, region string, match func(awsproxy.Request) bool) int {
	return c.proxy.Count(action, func(r awsproxy.Request) bool {
		return r.Account == account && r.Region == region && (match == nil || match(r))
	})
}
