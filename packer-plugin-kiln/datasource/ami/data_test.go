package ami

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/zclconf/go-cty/cty"

	"github.com/kiln-ci/kiln/packer-plugin-kiln/internal/mototest"
)

// awsEnv gives the process dummy credentials and, unless endpoint is "",
// AWS_ENDPOINT_URL, as a Packer run against moto would have.
func awsEnv(t *testing.T, endpoint string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
}

func execute(t *testing.T, raw map[string]interface{}) (cty.Value, error) {
	t.Helper()
	var d Datasource
	if err := d.Configure(raw); err != nil {
		t.Fatalf("configure: %v", err)
	}
	return d.Execute()
}

func TestKilnAMIDatasourceEndpointEnv(t *testing.T) {
	awsEnv(t, moto.URL)
	p := pipeline(t)
	want := mototest.Image(t, moto.EC2("us-east-1"), p, tagged(p, "refs/heads/main", "c1", "passed"))
	v, err := execute(t, map[string]interface{}{"pipeline": p, "ref": "main", "region": "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetAttr("id").AsString(); got != want {
		t.Fatalf("id = %s, want %s", got, want)
	}
	if got := v.GetAttr("tags").Index(cty.StringVal(TagCommit)).AsString(); got != "c1" {
		t.Errorf(`tags["kiln:commit"] = %s, want c1`, got)
	}
	if got := v.GetAttr("commit").AsString(); got != "c1" {
		t.Errorf("commit = %s, want c1", got)
	}
}

func TestKilnAMIDatasourceEndpointOption(t *testing.T) {
	awsEnv(t, "")
	p := pipeline(t)
	want := mototest.Image(t, moto.EC2("us-east-1"), p, tagged(p, "refs/heads/main", "c1", "passed"))
	v, err := execute(t, map[string]interface{}{"pipeline": p, "ref": "refs/heads/main", "region": "us-east-1", "endpoint": moto.URL})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetAttr("id").AsString(); got != want {
		t.Fatalf("id = %s, want %s", got, want)
	}
}

// An AMI another account holds is found through account_role_arn, and not
// without it: owners "self" then means the assumed account.
func TestKilnAMIDatasourceAccountRole(t *testing.T) {
	awsEnv(t, moto.URL)
	p := pipeline(t)
	const role = "arn:aws:iam::111111111111:role/kiln-reader"
	other := otherAccountEC2(t, role)
	want := mototest.Image(t, other, p, tagged(p, "refs/heads/main", "c1", "passed"))

	raw := map[string]interface{}{"pipeline": p, "ref": "main", "region": "us-east-1"}
	if _, err := execute(t, raw); err == nil || !strings.Contains(err.Error(), "no AMI of pipeline") {
		t.Fatalf("without the role: err = %v, want not found", err)
	}
	raw["account_role_arn"] = role
	v, err := execute(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetAttr("id").AsString(); got != want {
		t.Fatalf("id = %s, want %s", got, want)
	}
}

func TestKilnAMIDatasourceRequired(t *testing.T) {
	var d Datasource
	err := d.Configure(map[string]interface{}{"endpoint": "http://x"})
	if err == nil {
		t.Fatal("configured without pipeline, ref and region")
	}
	for _, f := range []string{"`pipeline`", "`ref`", "`region`"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
}

// otherAccountEC2 is an EC2 client acting in role's account: moto keeps
// each account's resources apart by the credentials AssumeRole hands out.
func otherAccountEC2(t *testing.T, role string) *ec2.Client {
	t.Helper()
	stsc := sts.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(moto.URL),
	})
	out, err := stsc.AssumeRole(t.Context(), &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("test")})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	return ec2.NewFromConfig(aws.Config{
		Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(
			aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)),
		BaseEndpoint: aws.String(moto.URL),
	})
}
