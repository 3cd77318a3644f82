package secrets_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/secrets"
)

const (
	arn       = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
	versionID = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"
)

func TestParseSecretsManagerRef(t *testing.T) {
	for ref, want := range map[string]secrets.SecretsManagerRef{
		"prod/db":                      {SecretID: "prod/db"},
		"prod/db:password":             {SecretID: "prod/db", JSONKey: "password"},
		"prod/db::AWSCURRENT":          {SecretID: "prod/db", VersionStage: "AWSCURRENT"},
		"prod/db:::" + versionID:       {SecretID: "prod/db", VersionID: versionID},
		"prod/db:password:AWSPREVIOUS": {SecretID: "prod/db", JSONKey: "password", VersionStage: "AWSPREVIOUS"},
		"prod/db:::":                   {SecretID: "prod/db"},
		"a_b+c=d.e@f-g":                {SecretID: "a_b+c=d.e@f-g"},
		arn:                            {SecretID: arn, Region: "us-east-1"},
		arn + ":password":              {SecretID: arn, JSONKey: "password", Region: "us-east-1"},
		arn + "::BLUE:" + versionID:    {SecretID: arn, VersionStage: "BLUE", VersionID: versionID, Region: "us-east-1"},
		// A partial ARN (without the random suffix) is Secrets Manager's to match.
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db:user": {
			SecretID: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db", JSONKey: "user", Region: "eu-west-1"},
		"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-AbCdEf": {
			SecretID: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-AbCdEf", Region: "us-gov-west-1"},
	} {
		got, err := secrets.ParseSecretsManagerRef(ref)
		require.NoError(t, err, ref)
		assert.Equal(t, want, got, ref)
	}
}

func TestParseSecretsManagerRefRejects(t *testing.T) {
	for ref, why := range map[string]string{
		"":          "is empty",
		":password": "secret name is empty",
		"my secret": "characters other than",
		"prod/db:k:AWSCURRENT:" + versionID + ":extra":          "4 parts after the secret",
		arn + ":k:s:" + versionID + ":extra":                    "4 parts after the secret",
		"prod/db:::short":                                       "version-id \"short\" has 5 characters",
		"arn:aws:ssm:us-east-1:123456789012:parameter/x":        "not a Secrets Manager secret ARN",
		"arn:aws:secretsmanager:us-east-1:123456789012":         "not a Secrets Manager secret ARN",
		"arn:aws:secretsmanager::123456789012:secret:x":         "no partition, region or account",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:": "secret name in the ARN is empty",
	} {
		_, err := secrets.ParseSecretsManagerRef(ref)
		var se *secrets.Error
		require.True(t, errors.As(err, &se), "%q: got %v", ref, err)
		assert.Equal(t, secrets.KindInvalidReference, se.Kind, ref)
		assert.Equal(t, secrets.StoreSecretsManager, se.Store, ref)
		assert.Equal(t, ref, se.Ref)
		assert.Contains(t, err.Error(), why, ref)
		assert.True(t, strings.HasPrefix(err.Error(), `secrets-manager "`+ref+`": `), err.Error())
		assert.Contains(t, err.Error(), "secret-id[:json-key[:version-stage[:version-id]]]", "says what the form is")
	}
}
