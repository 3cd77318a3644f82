package activities

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/kiln-ci/kiln/internal/ami"
	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/config"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// TestUpdateTargetRefsSSMParameterAndLaunchTemplateAsRole: the activity
// updates the parameter and the launch template in the target's account (as
// its role, which moto tells apart by the assumed keys), once: run again, as
// a retry would, it makes no second parameter or template version.
func TestUpdateTargetRefsSSMParameterAndLaunchTemplateAsRole(t *testing.T) {
	moto := motoserver.Start(t)
	proxy := awsproxy.Start(t, moto.URL)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL)
	ctx := t.Context()
	cfg, err := awsx.Config(ctx, "eu-west-1")
	require.NoError(t, err)
	asRole := awsx.AssumeRole(cfg, copyRole, "test")
	lt, err := ec2.NewFromConfig(asRole).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("app"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-0aaaaaaaaaaaaaaa0")},
	})
	require.NoError(t, err)

	in := RefsInput{RunID: "p/refs/1", Account: "222222222222", Role: copyRole, Region: "eu-west-1",
		AMI: "ami-0123456789abcdef0", SSMParameter: "/kiln/app/ami",
		LaunchTemplate: &config.LaunchTemplate{Name: "app", SetDefault: true}}
	want := &RefsResult{Account: "222222222222", Region: "eu-west-1", AMI: "ami-0123456789abcdef0",
		Parameter: &ParameterVersion{Name: "/kiln/app/ami", Version: 1},
		LaunchTemplate: &LaunchTemplateVersion{ID: aws.ToString(lt.LaunchTemplate.LaunchTemplateId), Name: "app",
			Version: 2, Default: true}}
	// Clients of its own: the package's default caches role credentials
	// another test's moto made.
	a := &Activities{Log: zerolog.Nop(), AWS: &ami.DefaultClients{}}
	for range 2 {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		v, err := env.ExecuteActivity(a.UpdateTargetRefs, in)
		require.NoError(t, err)
		var got RefsResult
		require.NoError(t, v.Get(&got))
		assert.Equal(t, want, &got)
	}

	assert.Equal(t, 1, proxy.Count("PutParameter", nil))
	reqs := proxy.Requests()
	n := 0
	for _, r := range reqs {
		if r.Action == "CreateLaunchTemplateVersion" {
			n++
			assert.Equal(t, RefsToken(in), r.Params.Get("ClientToken"))
			assert.Equal(t, "222222222222", r.Account, "as the target's role")
		}
	}
	assert.Equal(t, 1, n, "no second launch template version")
	p, err := ssm.NewFromConfig(asRole).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/kiln/app/ami")})
	require.NoError(t, err)
	assert.Equal(t, "ami-0123456789abcdef0", aws.ToString(p.Parameter.Value))
	_, err = ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/kiln/app/ami")})
	assert.Error(t, err, "not in the worker's own account")
}
