package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kiln-ci/kiln/internal/awsx"
	"github.com/kiln-ci/kiln/internal/secrets"
	"github.com/kiln-ci/kiln/test/awsproxy"
	"github.com/kiln-ci/kiln/test/motoserver"
)

// Every value stored in moto. No error message may contain any of them.
const (
	plainV1   = "hunter2-first-s3cr3t"
	plainV2   = "hunter2-rotated-s3cr3t"
	blueValue = "hunter2-blue-s3cr3t"
	dbPass    = "db-pass-s3cr3t"
	notJSON   = "not-json-s3cr3t"
	euValue   = "eu-only-s3cr3t"
	goneValue = "deleted-s3cr3t"
	tokenV1   = "ssm-token-s3cr3t"
	tokenV2   = "ssm-token-rotated-s3cr3t"
	euParam   = "ssm-eu-s3cr3t"
)

var binValue = []byte{0x00, 0xff, 'b', 'i', 'n', '-', 's', '3', 'c', 'r', '3', 't'}

// fixture is what seed stored and the tests read back.
type fixture struct {
	plainARN, plainV1ID, euARN, tokenARN, euParamARN string
}

// TestAgainstMoto reads secrets and parameters from a real moto_server,
// through awsproxy so faults can be injected and signing regions checked.
// The subtests share one server: starting it costs seconds.
func TestAgainstMoto(t *testing.T) {
	moto := motoserver.Start(t)
	for _, kv := range moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	p := awsproxy.Start(t, moto.URL)
	t.Setenv("AWS_ENDPOINT_URL", p.URL)
	ctx := context.Background()
	cfg, err := awsx.Config(ctx, "us-east-1")
	require.NoError(t, err)
	f := seed(t, cfg)
	r := secrets.New(cfg)

	t.Run("SecretsManagerReferenceForms", func(t *testing.T) { testSecretForms(t, r, f) })
	t.Run("ARNReadInItsRegion", func(t *testing.T) { testARNRegion(t, r, f, p) })
	t.Run("ParameterStore", func(t *testing.T) { testParameters(t, r, f) })
	t.Run("PermanentErrors", func(t *testing.T) { testPermanent(t, r, f) })
	t.Run("AccessDenied", func(t *testing.T) { testDenied(t, r, p) })
	t.Run("TransientErrors", func(t *testing.T) { testTransient(t, cfg, p) })
}

// seed creates the secrets and parameters the subtests read.
func seed(t *testing.T, cfg aws.Config) fixture {
	t.Helper()
	ctx := context.Background()
	var f fixture
	sm := secretsmanager.NewFromConfig(cfg)
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("kiln/plain"), SecretString: aws.String(plainV1)})
	require.NoError(t, err)
	f.plainARN, f.plainV1ID = *created.ARN, *created.VersionId
	// A new value moves AWSCURRENT to it and AWSPREVIOUS to the first one.
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("kiln/plain"), SecretString: aws.String(plainV2)})
	require.NoError(t, err)
	// A version under a custom label only, as a blue/green rotation stages it.
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String("kiln/plain"), SecretString: aws.String(blueValue), VersionStages: []string{"BLUE"}})
	require.NoError(t, err)

	for name, value := range map[string]string{
		"kiln/db":      `{"username": "admin", "password": "` + dbPass + `", "port": 5432, "opts": {"tls": true}}`,
		"kiln/notjson": notJSON,
		"kiln/gone":    goneValue,
	} {
		_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		require.NoError(t, err)
	}
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("kiln/bin"), SecretBinary: binValue})
	require.NoError(t, err)
	_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("kiln/gone")})
	require.NoError(t, err)

	eu := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.Region = "eu-west-1" })
	euCreated, err := eu.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("kiln/eu"), SecretString: aws.String(`{"token": "` + euValue + `"}`)})
	require.NoError(t, err)
	f.euARN = *euCreated.ARN

	ps := ssm.NewFromConfig(cfg)
	for _, in := range []*ssm.PutParameterInput{
		{Name: aws.String("/kiln/token"), Value: aws.String(tokenV1), Type: ssmtypes.ParameterTypeSecureString},
		{Name: aws.String("/kiln/token"), Value: aws.String(tokenV2), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)},
		{Name: aws.String("kiln-plain"), Value: aws.String("plain-param"), Type: ssmtypes.ParameterTypeString},
		{Name: aws.String("/kiln/list"), Value: aws.String("a,b"), Type: ssmtypes.ParameterTypeStringList},
	} {
		_, err = ps.PutParameter(ctx, in)
		require.NoError(t, err)
	}
	got, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/kiln/token")})
	require.NoError(t, err)
	f.tokenARN = *got.Parameter.ARN
	require.NotEqual(t, tokenV2, *got.Parameter.Value, "moto must encrypt a SecureString read without decryption")

	psEU := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.Region = "eu-west-1" })
	_, err = psEU.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/kiln/eu"), Value: aws.String(euParam), Type: ssmtypes.ParameterTypeSecureString})
	require.NoError(t, err)
	gotEU, err := psEU.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/kiln/eu")})
	require.NoError(t, err)
	f.euParamARN = *gotEU.Parameter.ARN
	return f
}

func testSecretForms(t *testing.T, r *secrets.Resolver, f fixture) {
	partialARN := f.plainARN[:strings.LastIndex(f.plainARN, "-")]
	for ref, want := range map[string]string{
		"kiln/plain":                             plainV2,
		"kiln/plain:":                            plainV2,
		"kiln/plain::AWSCURRENT":                 plainV2,
		"kiln/plain::AWSPREVIOUS":                plainV1,
		"kiln/plain::BLUE":                       blueValue,
		"kiln/plain:::" + f.plainV1ID:            plainV1,
		"kiln/plain::AWSPREVIOUS:" + f.plainV1ID: plainV1,
		f.plainARN:                               plainV2,
		f.plainARN + "::AWSPREVIOUS":             plainV1,
		partialARN:                               plainV2,
		"kiln/db:password":                       dbPass,
		"kiln/db:password:AWSCURRENT":            dbPass,
		"kiln/db:port":                           "5432",
		"kiln/db:opts":                           `{"tls":true}`,
		"kiln/bin":                               string(binValue),
	} {
		got, err := r.SecretsManager(context.Background(), ref)
		require.NoError(t, err, ref)
		assert.Equal(t, want, string(got), ref)
	}
}

func testARNRegion(t *testing.T, r *secrets.Resolver, f fixture, p *awsproxy.Proxy) {
	require.True(t, strings.Contains(f.euARN, ":eu-west-1:"), f.euARN)
	got, err := r.SecretsManager(context.Background(), f.euARN+":token")
	require.NoError(t, err)
	assert.Equal(t, euValue, string(got))
	assert.Positive(t, p.Count("GetSecretValue", func(req awsproxy.Request) bool { return req.Region == "eu-west-1" }),
		"the call must be signed for, and sent to, the ARN's region")

	// By name, the resolver looks in its own region, where moto has no such
	// secret: the ARN is what reaches another region.
	_, err = r.SecretsManager(context.Background(), "kiln/eu:token")
	se := requireKind(t, err, secrets.KindNotFound)
	assert.Contains(t, se.Error(), "in us-east-1")

	got, err = r.ParameterStore(context.Background(), f.euParamARN)
	require.NoError(t, err)
	assert.Equal(t, euParam, string(got))
}

func testParameters(t *testing.T, r *secrets.Resolver, f fixture) {
	for name, want := range map[string]string{
		"/kiln/token":   tokenV2, // a SecureString, decrypted
		"/kiln/token:1": tokenV1, // SSM's version selector passes through
		f.tokenARN:      tokenV2,
		"kiln-plain":    "plain-param",
		"/kiln/list":    "a,b",
	} {
		got, err := r.ParameterStore(context.Background(), name)
		require.NoError(t, err, name)
		assert.Equal(t, want, string(got), name)
	}
}

func testPermanent(t *testing.T, r *secrets.Resolver, f fixture) {
	ctx := context.Background()
	missingVersion := "00000000-0000-0000-0000-000000000000"
	for _, tc := range []struct {
		ref  string
		kind secrets.Kind
		says string
	}{
		{"kiln/nope", secrets.KindNotFound, "(ResourceNotFoundException: "},
		{"kiln/plain::NOSUCHSTAGE", secrets.KindNotFound, "check the secret's name, its version-stage or version-id"},
		{"kiln/plain:::" + missingVersion, secrets.KindNotFound, missingVersion},
		{"kiln/db:Password", secrets.KindInvalidValue, `no top-level key "Password"`},
		{"kiln/notjson:password", secrets.KindInvalidValue, "is not a JSON object"},
		{"kiln/bin:password", secrets.KindInvalidValue, "is not a JSON object"},
		{"kiln/gone", secrets.KindRejected, "(InvalidRequestException: "},
		{"kiln/plain::AWSCURRENT:" + f.plainV1ID, secrets.KindRejected, "must name the same version"},
		{"kiln/plain:a:b:c:d", secrets.KindInvalidReference, "at most 3"},
	} {
		_, err := r.SecretsManager(ctx, tc.ref)
		requireKind(t, err, tc.kind)
		assert.Contains(t, err.Error(), tc.says, tc.ref)
		assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("secrets-manager %q: ", tc.ref)), err.Error())
		assertNoValue(t, err)
	}
	for _, tc := range []struct {
		name string
		kind secrets.Kind
		says string
	}{
		{"/kiln/nope", secrets.KindNotFound, "(ParameterNotFound"},
		{"/kiln/token:7", secrets.KindNotFound, "(ParameterVersionNotFound"},
		{"/kiln/to ken", secrets.KindInvalidReference, "whitespace"},
	} {
		_, err := r.ParameterStore(ctx, tc.name)
		requireKind(t, err, tc.kind)
		assert.Contains(t, err.Error(), tc.says, tc.name)
		assertNoValue(t, err)
	}
}

// testDenied injects what AWS answers when the worker's role lacks the
// permission: moto does not evaluate IAM policies by default.
func testDenied(t *testing.T, r *secrets.Resolver, p *awsproxy.Proxy) {
	ctx := context.Background()
	p.Fail(awsproxy.Rule{Service: "secretsmanager", Action: "GetSecretValue", Times: 1, Kind: awsproxy.Denied})
	_, err := r.SecretsManager(ctx, "kiln/db:password")
	requireKind(t, err, secrets.KindAccessDenied)
	assert.Contains(t, err.Error(), "allows secretsmanager:GetSecretValue on the secret in us-east-1")
	assertNoValue(t, err)

	p.Fail(awsproxy.Rule{Service: "ssm", Action: "GetParameter", Times: 1, Kind: awsproxy.Denied})
	_, err = r.ParameterStore(ctx, "/kiln/token")
	requireKind(t, err, secrets.KindAccessDenied)
	assert.Contains(t, err.Error(), "allows ssm:GetParameter on the parameter in us-east-1")
	assertNoValue(t, err)
}

func testTransient(t *testing.T, cfg aws.Config, p *awsproxy.Proxy) {
	ctx := context.Background()
	t.Cleanup(p.ClearFaults)

	// Once throttled: the SDK's retry gets the value.
	before := p.Count("GetSecretValue", nil)
	p.Fail(awsproxy.Rule{Action: "GetSecretValue", Times: 1, Kind: awsproxy.Throttle})
	got, err := secrets.New(cfg).SecretsManager(ctx, "kiln/db:password")
	require.NoError(t, err)
	assert.Equal(t, dbPass, string(got))
	assert.Equal(t, 2, p.Count("GetSecretValue", nil)-before)

	// Failing past the SDK's attempts: a plain error the activity retries.
	fast := cfg.Copy()
	fast.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.Backoff = retry.NewExponentialJitterBackoff(10 * time.Millisecond)
		})
	}
	r := secrets.New(fast)
	for _, kind := range []awsproxy.Kind{awsproxy.Throttle, awsproxy.ServerError, awsproxy.Reset} {
		p.ClearFaults()
		p.Fail(awsproxy.Rule{Times: -1, Kind: kind})
		_, err := r.SecretsManager(ctx, "kiln/db:password")
		require.Error(t, err, kind)
		var se *secrets.Error
		assert.False(t, errors.As(err, &se), "%s must stay retryable: %v", kind, err)
		_, err = r.ParameterStore(ctx, "/kiln/token")
		require.Error(t, err, kind)
		assert.False(t, errors.As(err, &se), "%s must stay retryable: %v", kind, err)
		assertNoValue(t, err)
	}
	p.ClearFaults()
	var apiErr smithy.APIError
	p.Fail(awsproxy.Rule{Times: -1, Kind: awsproxy.Throttle})
	_, err = r.SecretsManager(ctx, "kiln/plain")
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, "ThrottlingException", apiErr.ErrorCode())
}

// assertNoValue fails if err, printed any way, holds a stored value.
func assertNoValue(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, v := range []string{plainV1, plainV2, blueValue, dbPass, notJSON, euValue, goneValue,
			tokenV1, tokenV2, euParam, string(binValue), "s3cr3t"} {
			assert.NotContains(t, s, v)
		}
	}
}
