// Package secrets reads the secrets a build declares, on the worker, from
// AWS Secrets Manager and SSM Parameter Store. References use CodeBuild's
// syntax, so the env.secrets-manager and env.parameter-store sections of a
// buildspec written for CodeBuild work unchanged.
//
// Failures that a retry cannot fix (a malformed reference, a missing secret,
// access denied, a json-key the secret lacks) are *Error; everything else is
// transient. No error carries a secret's value.
package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SecretsManagerAPI is the part of *secretsmanager.Client the Resolver uses.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
		opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SSMAPI is the part of *ssm.Client the Resolver uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput,
		opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Resolver reads secrets and parameters. A reference by ARN is read in the
// ARN's region, through the same client: the SDK lets one call override the
// client's region, so no client per region is kept.
type Resolver struct {
	// SecretsManagerClient is usually secretsmanager.NewFromConfig(cfg).
	SecretsManagerClient SecretsManagerAPI
	// SSMClient is usually ssm.NewFromConfig(cfg).
	SSMClient SSMAPI
	// Region is where references that are not ARNs are read. Empty leaves
	// each client's own region.
	Region string
}

// New returns a Resolver whose clients come from cfg (usually awsx.Config,
// which sets kiln's retries and honours AWS_ENDPOINT_URL), reading names in
// cfg's region.
func New(cfg aws.Config) *Resolver {
	return &Resolver{
		SecretsManagerClient: secretsmanager.NewFromConfig(cfg),
		SSMClient:            ssm.NewFromConfig(cfg),
		Region:               cfg.Region,
	}
}

// SecretsManager returns the value an env.secrets-manager reference names
// (see ParseSecretsManagerRef): the version's SecretString, or its
// SecretBinary, or with a json-key the value of that top-level key of the
// JSON object stored there. A string value comes unquoted; any other value
// (number, boolean, null, object, array) comes as its compact JSON text.
func (r *Resolver) SecretsManager(ctx context.Context, ref string) ([]byte, error) {
	parsed, err := ParseSecretsManagerRef(ref)
	if err != nil {
		return nil, err
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(parsed.SecretID)}
	if parsed.VersionStage != "" {
		in.VersionStage = aws.String(parsed.VersionStage)
	}
	if parsed.VersionID != "" {
		in.VersionId = aws.String(parsed.VersionID)
	}
	region := r.regionFor(parsed.Region)
	out, err := r.SecretsManagerClient.GetSecretValue(ctx, in, func(o *secretsmanager.Options) {
		if region != "" {
			o.Region = region
		}
	})
	if err != nil {
		return nil, classify(err, StoreSecretsManager, ref, where(region))
	}
	var value []byte
	switch {
	case out.SecretString != nil:
		value = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		value = out.SecretBinary
	default:
		return nil, &Error{Kind: KindInvalidValue, Store: StoreSecretsManager, Ref: ref,
			Msg: "the secret version has neither SecretString nor SecretBinary; check that a value was stored"}
	}
	if parsed.JSONKey == "" {
		return value, nil
	}
	return jsonKey(value, parsed.JSONKey, ref)
}

// ParameterStore returns the value of an env.parameter-store parameter,
// given by name (with an optional :version or :label selector) or by ARN.
// SecureStrings are decrypted, as CodeBuild does.
func (r *Resolver) ParameterStore(ctx context.Context, name string) ([]byte, error) {
	arnRegion, err := parseParameterName(name)
	if err != nil {
		return nil, err
	}
	region := r.regionFor(arnRegion)
	out, err := r.SSMClient.GetParameter(ctx, &ssm.GetParameterInput{
		Name:           aws.String(name),
		WithDecryption: aws.Bool(true),
	}, func(o *ssm.Options) {
		if region != "" {
			o.Region = region
		}
	})
	if err != nil {
		return nil, classify(err, StoreParameterStore, name, where(region))
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, &Error{Kind: KindInvalidValue, Store: StoreParameterStore, Ref: name,
			Msg: "SSM returned no value for the parameter"}
	}
	return []byte(*out.Parameter.Value), nil
}

// regionFor is where to read a reference whose ARN names arnRegion ("" for
// a name).
func (r *Resolver) regionFor(arnRegion string) string {
	if arnRegion != "" {
		return arnRegion
	}
	return r.Region
}

// where names a region for messages.
func where(region string) string {
	if region == "" {
		return "the client's region"
	}
	return region
}

// jsonKey returns key's value in the JSON object value. Its errors say
// nothing about value, not even the decoder's message, which quotes the
// offending character.
func jsonKey(value []byte, key, ref string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(value, &obj) != nil || obj == nil {
		return nil, &Error{Kind: KindInvalidValue, Store: StoreSecretsManager, Ref: ref,
			Msg: fmt.Sprintf("the reference gives json-key %q but the secret's value is not a JSON object; "+
				"store the secret as key/value JSON, or drop the json-key to use the whole value", key)}
	}
	raw, ok := obj[key]
	if !ok {
		return nil, &Error{Kind: KindInvalidValue, Store: StoreSecretsManager, Ref: ref,
			Msg: fmt.Sprintf("the secret's JSON has no top-level key %q; check the json-key (keys are case-sensitive)", key)}
	}
	// null unmarshals into a string without error, so look at the token.
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return []byte(s), nil
		}
	}
	// A number, boolean, null, object or array: as JSON text, on one line,
	// as an environment variable wants it. raw is valid JSON, so Compact
	// cannot fail.
	var buf bytes.Buffer
	_ = json.Compact(&buf, raw)
	return buf.Bytes(), nil
}
