package oci

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"
)

// ECRAPI is the one ECR call ECRAuth makes; *ecr.Client implements it.
type ECRAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, optFns ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// ecrDenied are the AWS error codes that mean the worker's credentials may
// not log in to ECR. ExpiredToken is not one: fresh credentials fix it.
var ecrDenied = map[string]bool{
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"InvalidClientTokenId":        true,
	"SignatureDoesNotMatch":       true,
}

// ECRAuth logs in to the ECR registry of client's account and region, for
// Pusher.Auth under that registry's host. The password is valid for 12
// hours, so get one per push rather than keeping it.
func ECRAuth(ctx context.Context, client ECRAPI) (Auth, error) {
	out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ecrDenied[ae.ErrorCode()] {
			return Auth{}, fmt.Errorf("ecr login: %w: %s", ErrUnauthorized, ae.ErrorMessage())
		}
		return Auth{}, fmt.Errorf("ecr login: %w", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return Auth{}, errors.New("ecr login: GetAuthorizationToken returned no token")
	}
	raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		// The decode error quotes no input, so it is safe to wrap.
		return Auth{}, fmt.Errorf("ecr login: token is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return Auth{}, errors.New("ecr login: token is not user:password")
	}
	return Auth{Username: user, Password: pass}, nil
}

// ecrHost matches an ECR private registry: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn].
var ecrHost = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// ECRRegion returns the AWS region of an ECR repository such as
// "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", and false for a
// repository in any other registry. The caller makes its ECR client in
// that region for ECRAuth.
func ECRRegion(repository string) (string, bool) {
	host, _, _ := strings.Cut(repository, "/")
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", false
	}
	return m[1], true
}
