package secrets

import (
	"fmt"
	"regexp"
	"strings"
)

// SecretsManagerRef is a parsed env.secrets-manager value, CodeBuild's
// secret-id:json-key:version-stage:version-id.
type SecretsManagerRef struct {
	// SecretID is the secret's name or ARN (full or partial), as written.
	SecretID string
	// JSONKey picks one top-level key of a JSON secret; empty means the
	// whole value.
	JSONKey string
	// VersionStage is a staging label such as AWSCURRENT or AWSPREVIOUS.
	VersionStage string
	// VersionID is the unique identifier of one version of the secret.
	VersionID string
	// Region is the region of an ARN, where the secret must be read; empty
	// for a name, which is read in the Resolver's region.
	Region string
}

// The constraints AWS documents for secret names and version IDs. Checking
// them here turns a typo into a config error instead of a failed build.
var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)

const (
	minVersionID = 32
	maxVersionID = 64
)

// refForm is the syntax quoted by every parse error.
const refForm = "secret-id[:json-key[:version-stage[:version-id]]]"

// ParseSecretsManagerRef parses a Secrets Manager reference the way CodeBuild
// reads env.secrets-manager, so a kiln config can be checked before a build
// runs. Every part after the secret is optional and may be empty
// ("db::AWSCURRENT"). The secret may be a full ARN, which contains colons of
// its own; its region is where the secret is read. A version-stage and a
// version-id may both be given; Secrets Manager then requires them to name
// the same version. Errors are *Error of KindInvalidReference.
func ParseSecretsManagerRef(ref string) (SecretsManagerRef, error) {
	invalid := func(format string, args ...any) (SecretsManagerRef, error) {
		return SecretsManagerRef{}, &Error{Kind: KindInvalidReference, Store: StoreSecretsManager, Ref: ref,
			Msg: fmt.Sprintf(format, args...) + "; the form is " + refForm + ", and secret-id may be a full ARN"}
	}
	if ref == "" {
		return invalid("the reference is empty")
	}
	var out SecretsManagerRef
	var rest []string
	if strings.HasPrefix(ref, "arn:") {
		// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME, then the
		// optional parts.
		parts := strings.Split(ref, ":")
		if len(parts) < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" {
			return invalid("the ARN is not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
		}
		if parts[1] == "" || parts[3] == "" || parts[4] == "" {
			return invalid("the ARN has no partition, region or account")
		}
		if !secretNameRE.MatchString(parts[6]) {
			return invalid("the secret name in the ARN is empty or has characters other than letters, digits and /_+=.@-")
		}
		out.SecretID, out.Region, rest = strings.Join(parts[:7], ":"), parts[3], parts[7:]
	} else {
		parts := strings.Split(ref, ":")
		if !secretNameRE.MatchString(parts[0]) {
			return invalid("the secret name is empty or has characters other than letters, digits and /_+=.@-")
		}
		out.SecretID, rest = parts[0], parts[1:]
	}
	if len(rest) > 3 {
		return invalid("there are %d parts after the secret, at most 3 are allowed", len(rest))
	}
	rest = append(rest, "", "", "") // parts left out are empty
	out.JSONKey, out.VersionStage, out.VersionID = rest[0], rest[1], rest[2]
	if n := len(out.VersionID); n > 0 && (n < minVersionID || n > maxVersionID) {
		return invalid("version-id %q has %d characters, Secrets Manager's are %d to %d long",
			out.VersionID, n, minVersionID, maxVersionID)
	}
	return out, nil
}

// CheckParameterName checks the shape of a Parameter Store name or ARN the
// way ParameterStore does before it calls SSM, so a kiln config can be
// checked before a build runs. Errors are *Error of KindInvalidReference.
func CheckParameterName(name string) error {
	_, err := parseParameterName(name)
	return err
}

// parseParameterName checks an env.parameter-store value and returns the
// region its ARN names, or "" for a plain name. Everything after the ARN's
// resource type (a name, with an optional :version or :label selector) is
// left to SSM, which accepts the same names CodeBuild does.
func parseParameterName(name string) (region string, err error) {
	invalid := func(msg string) (string, error) {
		return "", &Error{Kind: KindInvalidReference, Store: StoreParameterStore, Ref: name,
			Msg: msg + "; give the parameter's name (e.g. /app/token) or its ARN"}
	}
	if strings.TrimSpace(name) == "" {
		return invalid("the parameter name is empty")
	}
	if strings.ContainsAny(name, " \t\r\n") {
		return invalid("the parameter name contains whitespace")
	}
	if !strings.HasPrefix(name, "arn:") {
		return "", nil
	}
	// arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME; NAME may hold a
	// selector with a colon, hence SplitN.
	parts := strings.SplitN(name, ":", 6)
	if len(parts) < 6 || parts[2] != "ssm" || !strings.HasPrefix(parts[5], "parameter/") ||
		len(parts[5]) == len("parameter/") {
		return invalid("the ARN is not an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)")
	}
	if parts[1] == "" || parts[3] == "" || parts[4] == "" {
		return invalid("the ARN has no partition, region or account")
	}
	return parts[3], nil
}
