package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/secrets"
)

// fakeSM answers GetSecretValue with out or err and records what it was
// asked, including the region the call's options ended up with.
type fakeSM struct {
	secrets.SecretsManagerAPI
	out    *secretsmanager.GetSecretValueOutput
	err    error
	calls  int
	in     *secretsmanager.GetSecretValueInput
	region string
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput,
	opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	o := secretsmanager.Options{Region: "client-region"}
	for _, fn := range opts {
		fn(&o)
	}
	f.calls, f.in, f.region = f.calls+1, in, o.Region
	return f.out, f.err
}

// fakeSSM is fakeSM for GetParameter.
type fakeSSM struct {
	secrets.SSMAPI
	value  string
	err    error
	in     *ssm.GetParameterInput
	region string
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput,
	opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	o := ssm.Options{Region: "client-region"}
	for _, fn := range opts {
		fn(&o)
	}
	f.in, f.region = in, o.Region
	if f.err != nil {
		return nil, f.err
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String(f.value)}}, nil
}

func secretString(s string) *secretsmanager.GetSecretValueOutput {
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s)}
}

// apiError is what the SDK returns: an API error inside an operation error.
func apiError(service, op, code, msg string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: msg}}
}

func requireKind(t *testing.T, err error, kind secrets.Kind) *secrets.Error {
	t.Helper()
	var se *secrets.Error
	require.True(t, errors.As(err, &se), "want *secrets.Error, got %T: %v", err, err)
	assert.Equal(t, kind, se.Kind, se.Error())
	return se
}

const dbSecret = `{"username": "admin", "password": "p@ss:w\"rd\u00e9", "port": 5432, "ratio": 1.50,
	"tls": true, "none": null, "opts": { "pool": [1, 2], "mode": "x" }}`

func TestJSONKeyValues(t *testing.T) {
	for key, want := range map[string]string{
		"username": "admin",
		"password": `p@ss:w"rdé`,
		"port":     "5432",
		"ratio":    "1.50",
		"tls":      "true",
		"none":     "null",
		"opts":     `{"pool":[1,2],"mode":"x"}`,
	} {
		r := &secrets.Resolver{SecretsManagerClient: &fakeSM{out: secretString(dbSecret)}}
		got, err := r.SecretsManager(context.Background(), "prod/db:"+key)
		require.NoError(t, err, key)
		assert.Equal(t, want, string(got), key)
	}
}

func TestWholeValueWithoutJSONKey(t *testing.T) {
	r := &secrets.Resolver{SecretsManagerClient: &fakeSM{out: secretString(dbSecret)}}
	got, err := r.SecretsManager(context.Background(), "prod/db")
	require.NoError(t, err)
	assert.Equal(t, dbSecret, string(got), "returned as stored, not re-encoded")

	bin := []byte{0, 1, 0xff}
	r.SecretsManagerClient = &fakeSM{out: &secretsmanager.GetSecretValueOutput{SecretBinary: bin}}
	got, err = r.SecretsManager(context.Background(), "prod/bin")
	require.NoError(t, err)
	assert.Equal(t, bin, got)
}

// TestBadValueNeverLeaks: the JSON decoder's error quotes the offending
// character, so neither the message nor the chain may carry it.
func TestBadValueNeverLeaks(t *testing.T) {
	for _, tc := range []struct{ value, ref, why string }{
		{"Zs3cr3t-not-json", "s:password", "is not a JSON object"},
		{`["Zs3cr3t"]`, "s:password", "is not a JSON object"},
		{"null", "s:password", "is not a JSON object"},
		{`{"user": "Zs3cr3t"`, "s:user", "is not a JSON object"},
		{`{"user": "Zs3cr3t"}`, "s:Password", `no top-level key "Password"`},
	} {
		r := &secrets.Resolver{SecretsManagerClient: &fakeSM{out: secretString(tc.value)}}
		_, err := r.SecretsManager(context.Background(), tc.ref)
		se := requireKind(t, err, secrets.KindInvalidValue)
		assert.Contains(t, err.Error(), tc.why, tc.value)
		assert.NoError(t, se.Err, "nothing wrapped: %v", se.Err)
		var syn *json.SyntaxError
		assert.False(t, errors.As(err, &syn))
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			assert.NotContains(t, s, "Zs3cr3t")
			assert.NotContains(t, s, "'Z'", "the decoder's quote of the value")
		}
	}
}

func TestRegionFollowsARN(t *testing.T) {
	ctx := context.Background()
	sm := &fakeSM{out: secretString("v")}
	r := &secrets.Resolver{SecretsManagerClient: sm}
	_, err := r.SecretsManager(ctx, "prod/db")
	require.NoError(t, err)
	assert.Equal(t, "client-region", sm.region, "no Region: the client's own")

	r.Region = "us-west-2"
	_, err = r.SecretsManager(ctx, "prod/db::AWSPREVIOUS:"+versionID)
	require.NoError(t, err)
	assert.Equal(t, "us-west-2", sm.region)
	assert.Equal(t, "prod/db", aws.ToString(sm.in.SecretId))
	assert.Equal(t, "AWSPREVIOUS", aws.ToString(sm.in.VersionStage))
	assert.Equal(t, versionID, aws.ToString(sm.in.VersionId))

	_, err = r.SecretsManager(ctx, "arn:aws:secretsmanager:eu-west-1:210987654321:secret:db-AbCdEf:password")
	require.Error(t, err, "the fake's value has no key")
	assert.Equal(t, "eu-west-1", sm.region)
	assert.Equal(t, "arn:aws:secretsmanager:eu-west-1:210987654321:secret:db-AbCdEf", aws.ToString(sm.in.SecretId))
	assert.Nil(t, sm.in.VersionStage)
	assert.Nil(t, sm.in.VersionId)

	p := &fakeSSM{value: "v"}
	r.SSMClient = p
	_, err = r.ParameterStore(ctx, "/app/token:3")
	require.NoError(t, err)
	assert.Equal(t, "us-west-2", p.region)
	assert.Equal(t, "/app/token:3", aws.ToString(p.in.Name), "selectors are SSM's to read")
	assert.True(t, aws.ToBool(p.in.WithDecryption))
	_, err = r.ParameterStore(ctx, "arn:aws:ssm:ap-south-1:210987654321:parameter/app/token")
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", p.region)
}

func TestInvalidReferenceMakesNoCall(t *testing.T) {
	sm := &fakeSM{out: secretString("v")}
	r := &secrets.Resolver{SecretsManagerClient: sm, SSMClient: &fakeSSM{err: errors.New("must not be called")}}
	_, err := r.SecretsManager(context.Background(), "db:a:b:c:d")
	requireKind(t, err, secrets.KindInvalidReference)
	assert.Zero(t, sm.calls)
	for _, name := range []string{"", "/app/my token", "arn:aws:secretsmanager:us-east-1:1:secret:x", "arn:aws:ssm:us-east-1:1:parameter/"} {
		_, err = r.ParameterStore(context.Background(), name)
		se := requireKind(t, err, secrets.KindInvalidReference)
		assert.Equal(t, secrets.StoreParameterStore, se.Store)
	}
}

func TestPermanentAWSErrors(t *testing.T) {
	for _, tc := range []struct {
		code string
		kind secrets.Kind
		hint string
	}{
		{"ResourceNotFoundException", secrets.KindNotFound, "a secret in another region or account needs its full ARN"},
		{"AccessDeniedException", secrets.KindAccessDenied, "allows secretsmanager:GetSecretValue on the secret in us-west-2"},
		{"DecryptionFailure", secrets.KindAccessDenied, "(kms:Decrypt)"},
		{"InvalidRequestException", secrets.KindRejected, "scheduled for deletion"},
		{"InvalidParameterException", secrets.KindRejected, "check the reference"},
	} {
		cause := apiError("Secrets Manager", "GetSecretValue", tc.code, "aws says no")
		r := &secrets.Resolver{SecretsManagerClient: &fakeSM{err: cause}, Region: "us-west-2"}
		_, err := r.SecretsManager(context.Background(), "prod/db:password")
		se := requireKind(t, err, tc.kind)
		assert.ErrorIs(t, err, cause, "the AWS error stays inspectable")
		assert.Contains(t, err.Error(), tc.hint, tc.code)
		assert.Contains(t, err.Error(), "("+tc.code+": aws says no)", tc.code)
		assert.True(t, strings.HasPrefix(se.Error(), `secrets-manager "prod/db:password": `), se.Error())
	}
	for _, tc := range []struct {
		code string
		kind secrets.Kind
		hint string
	}{
		{"ParameterNotFound", secrets.KindNotFound, "exists in eu-west-1"},
		{"ParameterVersionNotFound", secrets.KindNotFound, ":version or :label selector"},
		{"AccessDeniedException", secrets.KindAccessDenied, "allows ssm:GetParameter on the parameter in eu-west-1"},
		{"InvalidKeyId", secrets.KindAccessDenied, "(kms:Decrypt)"},
		{"ValidationException", secrets.KindRejected, "parameter's name"},
	} {
		cause := apiError("SSM", "GetParameter", tc.code, "")
		r := &secrets.Resolver{SSMClient: &fakeSSM{err: cause}, Region: "eu-west-1"}
		_, err := r.ParameterStore(context.Background(), "/app/token")
		requireKind(t, err, tc.kind)
		assert.Contains(t, err.Error(), tc.hint, tc.code)
		assert.Contains(t, err.Error(), "("+tc.code+")", "SSM often sends no message; the code still shows")
	}
}

func TestTransientErrorsStayRetryable(t *testing.T) {
	for _, cause := range []error{
		apiError("Secrets Manager", "GetSecretValue", "ThrottlingException", "Rate exceeded"),
		apiError("Secrets Manager", "GetSecretValue", "InternalServiceError", ""),
		apiError("SSM", "GetParameter", "InternalServerError", ""),
		apiError("SSM", "GetParameter", "ExpiredToken", ""),
		fmt.Errorf("read tcp: %w", syscall.ECONNRESET),
		context.DeadlineExceeded,
	} {
		r := &secrets.Resolver{SecretsManagerClient: &fakeSM{err: cause}, SSMClient: &fakeSSM{err: cause}, Region: "us-east-1"}
		_, err := r.SecretsManager(context.Background(), "prod/db")
		var se *secrets.Error
		assert.False(t, errors.As(err, &se), "%v must stay retryable", cause)
		assert.ErrorIs(t, err, cause)
		assert.True(t, strings.HasPrefix(err.Error(), `secrets-manager "prod/db" in us-east-1: `), err.Error())

		_, err = r.ParameterStore(context.Background(), "/app/token")
		assert.False(t, errors.As(err, &se), "%v must stay retryable", cause)
		assert.ErrorIs(t, err, cause)
	}
}
